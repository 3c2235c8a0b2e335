package ai.lathe.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.jobs.SftTrainJob;
import ai.lathe.model.Config;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The driver process is killed (SIGKILL) after its first checkpoint; rerunning the same command
 * resumes from it and ends with the adapter of an uninterrupted run.
 */
@Tag("slow")
class DriverKillTest {

  static List<String> settings(Path dir, Path model, Path data, String out) {
    return new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir.resolve(out), "lora.r=4",
        "lora.alpha=8", "train.batch_size=2", "train.seq_len=96", "train.lr=5e-3", "train.max_steps=9",
        "distributed.averaging_frequency=3", "distributed.partitions=2", "distributed.eval_every=0"));
  }

  @Test
  void killedDriverResumesFromTheLastCheckpoint() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "kill");
    Path model = Fixtures.tiny(dir);
    SparkSession local = Fixtures.session("local[2]").getOrCreate();
    Path data = Fixtures.prepared(local, dir, model);
    SftTrainJob.run(local, Config.load(null, settings(dir, model, data, "reference")));
    local.stop();

    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    cmd.addAll(List.of(Fixtures.split(Fixtures.executorJavaOptions())));
    cmd.addAll(List.of("-Dspark.master=local[2]", "-Dspark.ui.enabled=false", "-Dspark.driver.host=127.0.0.1",
        "-cp", System.getProperty("java.class.path"), "ai.lathe.jobs.SftTrainJob"));
    for (String s : settings(dir, model, data, "killed")) {
      cmd.addAll(List.of("--set", s));
    }
    Path ckpt = dir.resolve("killed.checkpoints/round-000000/state.json");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("run1.log").toFile()).start();
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
    while (!Files.exists(ckpt) && p.isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    assertTrue(Files.exists(ckpt), "first checkpoint written: " + Files.readString(dir.resolve("run1.log")));
    p.destroyForcibly(); // SIGKILL: no shutdown hooks, nothing cleaned up
    p.waitFor();
    assertTrue(!Files.exists(dir.resolve("killed")), "no output published by the killed run");
    Process again = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("run2.log").toFile())
        .start();
    assertTrue(again.waitFor(5, TimeUnit.MINUTES));
    String log = Files.readString(dir.resolve("run2.log"));
    assertEquals(0, again.exitValue(), log);
    assertTrue(log.contains("resuming after round"), log);
    double d = MultiJvmSftTest.maxDiff(MultiJvmSftTest.params(dir.resolve("reference"), model),
        MultiJvmSftTest.params(dir.resolve("killed"), model));
    assertTrue(d < 1e-7, "max |resumed − uninterrupted| = " + d);
  }

  /** A prep run killed with SIGKILL while it works leaves the previous output exactly as it was. */
  @Test
  void killedPrepLeavesThePreviousOutputIntact() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "killprep");
    Path model = Fixtures.tiny(dir);
    SparkSession local = Fixtures.session("local[2]").getOrCreate();
    Path out = dir.resolve("prepared");
    Fixtures.prepared(local, dir, model);
    local.stop();
    String manifest = Files.readString(out.resolve("manifest.json"));
    List<String> before;
    try (var s = Files.walk(out)) {
      before = s.map(p -> out.relativize(p).toString()).sorted().toList();
    }
    for (long waitMs : new long[] {4000, 9000}) {
      List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
      cmd.addAll(List.of(Fixtures.split(Fixtures.executorJavaOptions())));
      cmd.addAll(List.of("-Dspark.master=local[2]", "-Dspark.ui.enabled=false", "-Dspark.driver.host=127.0.0.1",
          "-cp", System.getProperty("java.class.path"), "ai.lathe.prep.PrepJob",
          "--set", "input=" + Fixtures.ROOT.resolve("data/sample/debian-faq/instructions.jsonl"),
          "--set", "output=" + out, "--set", "tokenizer=" + model, "--set", "max_length=64"));
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("prep.log").toFile()).start();
      Thread.sleep(waitMs);
      p.destroyForcibly();
      p.waitFor();
      assertEquals(manifest, Files.readString(out.resolve("manifest.json")), "killed after " + waitMs + " ms");
      try (var s = Files.walk(out)) {
        assertEquals(before, s.map(q -> out.relativize(q).toString()).sorted().toList());
      }
    }
  }
}
