package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bin/lathe's default log file follows the pipeline's work_dir, and is never put in the current directory. */
class LogLocationTest {
  private static final Path CWD = Path.of("").toAbsolutePath();

  @Test
  void thePipelinesLogGoesUnderItsWorkDir(@TempDir Path tmp) throws Exception {
    Path cfg = tmp.resolve("pipeline.yaml");
    Files.writeString(cfg, "work_dir: " + tmp.resolve("from-file") + "\n");
    Path t = tmp.resolve("t");
    assertEquals(tmp.resolve("from-file/logs/lathe.log"),
        LogLocation.of(new String[] {"pipeline", "--config", cfg.toString()}, t, "u"));
    // --set wins over the file, as in the pipeline
    assertEquals(tmp.resolve("w/logs/lathe.log"), LogLocation.of(new String[] {"pipeline", "--config", cfg.toString(),
        "--set", "work_dir=" + tmp.resolve("w")}, t, "u"));
    // a relative work_dir is the pipeline's: against the current directory
    Files.writeString(cfg, "work_dir: rel/w\n");
    assertEquals(CWD.resolve("rel/w/logs/lathe.log"),
        LogLocation.of(new String[] {"pipeline", "--config", cfg.toString()}, t, "u"));
  }

  @Test
  void otherCommandsAndBadArgumentsLogInTheTempFolder(@TempDir Path tmp) {
    Path want = tmp.resolve("lathe-u/lathe.log");
    for (String[] argv : new String[][] {{"sft", "--config", "conf/sft.yaml"}, {"score", "--model", "m"}, {},
        {"pipeline", "--config", tmp.resolve("missing.yaml").toString()}, {"pipeline", "--bogus", "x"}}) {
      Path p = LogLocation.of(argv, tmp, "u");
      assertEquals(want, p, String.join(" ", argv));
      assertFalse(p.startsWith(CWD.resolve("work")));
    }
  }

  @Test
  void onlyTheLaunchersAutoIsReplaced(@TempDir Path tmp) throws Exception {
    String old = System.getProperty(LogLocation.PROPERTY);
    Path cfg = tmp.resolve("p.yaml");
    Files.writeString(cfg, "work_dir: " + tmp.resolve("w") + "\n");
    String[] argv = {"pipeline", "--config", cfg.toString()};
    try {
      System.setProperty(LogLocation.PROPERTY, "auto");
      LogLocation.apply(argv);
      assertEquals(tmp.resolve("w/logs/lathe.log").toString(), System.getProperty(LogLocation.PROPERTY));
      System.setProperty(LogLocation.PROPERTY, "/given/by/LATHE_LOG.log");
      LogLocation.apply(argv);
      assertEquals("/given/by/LATHE_LOG.log", System.getProperty(LogLocation.PROPERTY));
    } finally {
      if (old == null) {
        System.clearProperty(LogLocation.PROPERTY);
      } else {
        System.setProperty(LogLocation.PROPERTY, old);
      }
    }
  }

  @Test
  void theLauncherLeavesTheChoiceToLathe() throws Exception {
    Path launcher = Path.of("..", "bin", "lathe");
    String text = Files.readString(launcher);
    assertTrue(text.contains("-Dlathe.log.file=\"${LATHE_LOG:-auto}\""), "bin/lathe must pass auto unless LATHE_LOG");
    assertFalse(text.contains("$PWD/work"), "bin/lathe must not default to the current directory");
  }
}
