package ai.lathe.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.jobs.AdapterState;
import ai.lathe.jobs.SftTrainJob;
import ai.lathe.model.Config;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The SFT job across separate executor JVMs: local-cluster[2,1,1024], with one executor JVM
 * killed mid-run (its tasks rerun elsewhere), must give the adapter of an in-process local[2] run.
 */
@Tag("slow")
class MultiJvmSftTest {

  static Config cfg(Path dir, Path model, Path data, String name) throws Exception {
    return Config.load(null, new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir.resolve(name),
        "lora.r=4", "lora.alpha=8", "lora.dropout=0.1", "train.batch_size=2", "train.seq_len=96", "train.lr=5e-3",
        "train.max_steps=6", "distributed.averaging_frequency=2", "distributed.partitions=2",
        "distributed.eval_every=3")));
  }

  static float[][] params(Path adapter, Path model) throws Exception {
    AdapterSet a = PeftAdapter.read(adapter, HfCheckpoint.open(model).config(), DataType.FLOAT);
    return AdapterState.of(a, null).params();
  }

  static double maxDiff(float[][] a, float[][] b) {
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      for (int j = 0; j < a[i].length; j++) {
        d = Math.max(d, Math.abs(a[i][j] - b[i][j]));
      }
    }
    return d;
  }

  static Path dir;
  static Path model;
  static Path data;

  @BeforeAll
  static void localReference() throws Exception {
    dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "mjvm");
    model = Fixtures.tiny(dir);
    SparkSession local = Fixtures.session("local[2]").getOrCreate();
    data = Fixtures.prepared(local, dir, model);
    SftTrainJob.run(local, cfg(dir, model, data, "local"));
    local.stop();
  }

  @Test
  void standaloneMasterAndTwoWorkersOnLoopback() throws Exception {
    int port;
    try (ServerSocket ss = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = ss.getLocalPort();
    }
    Map<String, String> env = Map.of("LATHE_CLASSPATH", System.getProperty("java.class.path"),
        "LATHE_SPARK_PORT", Integer.toString(port),
        "LATHE_STANDALONE_DIR", dir.resolve("standalone").toString());
    String script = Fixtures.ROOT.resolve("bin/lathe-standalone").toString();
    try {
      assertEquals(0, sh(env, script, "start", "2", "1", "1g"));
      Config c = cfg(dir, model, data, "standalone-out"); // not the cluster's state folder "standalone"
      List<String> args = new ArrayList<>(List.of(script, "submit", "sft"));
      c.root().fields().forEachRemaining(e -> {
        if (e.getValue().isObject()) {
          e.getValue().fields().forEachRemaining(f -> args.addAll(List.of("--set",
              e.getKey() + "." + f.getKey() + "=" + f.getValue().asText())));
        } else {
          args.addAll(List.of("--set", e.getKey() + "=" + e.getValue().asText()));
        }
      });
      Path log = dir.resolve("standalone-submit.log");
      assertEquals(0, sh(env, log, args.toArray(new String[0])));
      String out = Files.readString(log);
      // the cluster's executors did the work: the application registered with the Master, and the
      // job's rounds ran in two executor JVMs, each loading the base once (local mode would say 1)
      assertTrue(out.contains("master spark://127.0.0.1:" + port), out);
      assertTrue(out.contains("(2 executor JVMs, 2 model loads)"), out);
      assertTrue(out.lines().filter(l -> l.startsWith("round ")).allMatch(l -> l.endsWith(", 2 executor JVMs")), out);
      // the Workers launched the application's executors: one executor folder each under app-*
      try (var apps = Files.list(dir.resolve("standalone/work"))) {
        List<Path> app = apps.filter(x -> x.getFileName().toString().startsWith("app-")).toList();
        assertEquals(1, app.size(), "one application ran on the cluster: " + app);
        try (var execs = Files.list(app.get(0))) {
          assertEquals(2, execs.count(), "two executors were launched by the Workers");
        }
      }
      assertTrue(maxDiff(params(dir.resolve("local"), model), params(dir.resolve("standalone-out"), model)) < 1e-6);
      // more partitions than the cluster's slots: refused before any round, naming the setting
      Path log3 = dir.resolve("standalone-3.log");
      List<String> three = new ArrayList<>(args);
      three.addAll(List.of("--set", "distributed.partitions=3", "--set", "distributed.executor_wait_s=30", "--set",
          "output=" + dir.resolve("three")));
      assertEquals(1, sh(env, log3, three.toArray(new String[0])));
      assertTrue(Files.readString(log3).contains("distributed.partitions=3 but the cluster"), Files.readString(log3));
      assertTrue(!Files.exists(dir.resolve("three")));
      // a failing job exits non-zero through spark-submit too
      assertEquals(1, sh(env, script, "submit", "sft", "--set", "model=" + model, "--set", "data=" + dir.resolve("nope"),
          "--set", "output=" + dir.resolve("never")));
    } finally {
      sh(env, script, "stop");
    }
  }

  static int sh(Map<String, String> env, String... cmd) throws Exception {
    return sh(env, null, cmd);
  }

  /** Runs cmd; with a log, its stdout and stderr go there (and are printed afterwards). */
  static int sh(Map<String, String> env, Path log, String... cmd) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(cmd);
    if (log == null) {
      pb.inheritIO();
    } else {
      pb.redirectErrorStream(true).redirectOutput(log.toFile());
    }
    pb.environment().putAll(env);
    Process p = pb.start();
    if (!p.waitFor(10, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new AssertionError("timed out: " + String.join(" ", cmd));
    }
    if (log != null) {
      System.out.print(Files.readString(log));
    }
    return p.exitValue();
  }

  @Test
  void localClusterWithAKilledExecutorMatchesLocalRun() throws Exception {

    Path marker = dir.resolve("halted-once");
    SparkSession cluster = Fixtures.session("local-cluster[2,1,1024]")
        .config("spark.executor.extraJavaOptions", Fixtures.executorJavaOptions()
            + " -Dlathe.test.haltOnceMarker=" + marker)
        .getOrCreate();
    try {
      SftTrainJob.Result r = SftTrainJob.run(cluster, cfg(dir, model, data, "cluster"));
      assertTrue(Files.exists(marker), "an executor JVM was killed during the run");
      assertTrue(r.executors() >= 2, "tasks ran in " + r.executors() + " executor JVMs");
      assertEquals(r.executors(), r.modelLoads(), "each executor JVM loads the base model once");
      // every round ran as one barrier stage over two executor JVMs, although the executors
      // registered after the session started (the job waited for them)
      r.metrics().forEach(m -> assertEquals(2, m.get("executors").asInt(), m.toString()));
    } finally {
      cluster.stop();
    }
    double d = maxDiff(params(dir.resolve("local"), model), params(dir.resolve("cluster"), model));
    assertTrue(d < 1e-6, "max |local-cluster − local| = " + d);
  }
}
