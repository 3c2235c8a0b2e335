package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bin/lathe's memory defaults, read off the java command line it builds (LATHE_JAVA points at a
 * script that prints its arguments and the malloc settings it was started with): the Spark jobs and
 * the pipeline get a 2 GB heap and an 8 GB JavaCPP physical-memory backstop, the single-machine
 * commands 8 GB and 14 GB, every command two malloc arenas and no fixed mmap threshold (one made sgemm 3x slower), and
 * LATHE_JAVA_OPTS comes after the defaults, so an explicit -Xmx wins.
 */
class LauncherDefaultsTest {
  /** What the fake java saw: its arguments in order, then MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_. */
  record Launch(List<String> args, String arenas, String mmapThreshold) {
    /** The value the JVM uses for an option given several times: the last one. */
    String last(String prefix) {
      String v = null;
      for (String a : args) {
        if (a.startsWith(prefix)) {
          v = a.substring(prefix.length());
        }
      }
      return v;
    }
  }

  static Launch launch(Path tmp, String command, Map<String, String> env) throws Exception {
    Path root = tmp.resolve("root");
    Files.createDirectories(root.resolve("bin"));
    Files.createDirectories(root.resolve("conf"));
    Files.createDirectories(root.resolve("spark-jobs/target"));
    Files.copy(Path.of("../bin/lathe"), root.resolve("bin/lathe"));
    Files.copy(Path.of("../conf/jvm-options"), root.resolve("conf/jvm-options"));
    Files.writeString(root.resolve("spark-jobs/target/lathe-classpath.txt"), "/nowhere.jar");
    Path java = tmp.resolve("java");
    Files.writeString(java, "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\"\n"
        + "echo \"ARENAS=${MALLOC_ARENA_MAX:-}\"\necho \"MMAP=${MALLOC_MMAP_THRESHOLD_:-}\"\n");
    Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
    ProcessBuilder pb = new ProcessBuilder("bash", root.resolve("bin/lathe").toString(), command).redirectErrorStream(true);
    pb.environment().remove("MALLOC_ARENA_MAX");
    pb.environment().remove("MALLOC_MMAP_THRESHOLD_");
    pb.environment().remove("LATHE_JAVA_OPTS");
    pb.environment().put("LATHE_NO_BUILD", "1");
    pb.environment().put("LATHE_JAVA", java.toString());
    pb.environment().put("LATHE_CACHE", tmp.resolve("cache").toString());
    pb.environment().putAll(env);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), out);
    List<String> args = new ArrayList<>(out.lines().toList());
    String arenas = args.remove(args.size() - 2).substring("ARENAS=".length());
    String mmap = args.remove(args.size() - 1).substring("MMAP=".length());
    return new Launch(args, arenas, mmap);
  }

  @Test
  void sparkJobsAndThePipelineGetASmallHeapAndABackstop(@TempDir Path tmp) throws Exception {
    for (String cmd : List.of("pipeline", "sft", "eval")) {
      Launch l = launch(tmp.resolve(cmd), cmd, Map.of());
      assertEquals("2g", l.last("-Xmx"), cmd);
      assertEquals("8G", l.last("-Dorg.bytedeco.javacpp.maxphysicalbytes="), cmd);
      assertEquals("2", l.arenas(), cmd);
      // a fixed MALLOC_MMAP_THRESHOLD_ maps and unmaps every large buffer: sgemm 129 vs 378 GFLOP/s
      assertEquals("", l.mmapThreshold(), cmd);
      assertEquals(cmd, l.args().get(l.args().size() - 1), "the command is passed on last");
    }
  }

  @Test
  void singleMachineCommandsKeepTheLargerHeap(@TempDir Path tmp) throws Exception {
    Launch l = launch(tmp, "score", Map.of());
    assertEquals("8g", l.last("-Xmx"));
    assertEquals("14G", l.last("-Dorg.bytedeco.javacpp.maxphysicalbytes="));
    assertEquals("2", l.arenas());
  }

  @Test
  void explicitOptionsAndMallocSettingsWin(@TempDir Path tmp) throws Exception {
    Launch l = launch(tmp, "pipeline", Map.of("LATHE_JAVA_OPTS", "-Xmx5g -Dorg.bytedeco.javacpp.maxphysicalbytes=12G",
        "MALLOC_ARENA_MAX", "4"));
    assertEquals("5g", l.last("-Xmx"));
    assertEquals("12G", l.last("-Dorg.bytedeco.javacpp.maxphysicalbytes="));
    assertEquals("4", l.arenas());
    assertTrue(l.args().indexOf("-Xmx5g") > l.args().indexOf("-Xmx2g"), "LATHE_JAVA_OPTS after the defaults");
  }
}
