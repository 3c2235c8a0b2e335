package ai.lathe.it;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.prep.PrepJob;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.spark.sql.SparkSession;

/** Shared set-up for the multi-JVM tests: a tiny model, prepared sample data, Spark settings. */
final class Fixtures {
  static final Path ROOT = Path.of(System.getProperty("lathe.root", ".."));

  private Fixtures() {}

  static Path tiny(Path dir) throws Exception {
    Path model = dir.resolve("model");
    LlamaConfig c = new LlamaConfig("llama", 32000, 64, 2, 4, 2, 96, 1e-5, 10000, false, 512, 1, 2);
    RandomLlama.write(model, c, 1, "F32", ROOT.resolve("data/tokenizer/llama2"));
    return model;
  }

  static Path prepared(SparkSession spark, Path dir, Path model) throws Exception {
    Path data = dir.resolve("prepared");
    PrepJob.run(spark, Config.load(null, List.of("input=" + ROOT.resolve("data/sample/debian-faq/instructions.jsonl"),
        "output=" + data, "tokenizer=" + model, "max_length=96")));
    return data;
  }

  /** JVM options for executor JVMs: the project's module options, scratch under target/. */
  static String executorJavaOptions() throws Exception {
    List<String> opts = Files.readAllLines(ROOT.resolve("conf/jvm-options")).stream()
        .filter(l -> !l.isBlank() && !l.startsWith("#")).collect(Collectors.toCollection(ArrayList::new));
    opts.add("-Dorg.bytedeco.javacpp.cachedir=" + ROOT.resolve("target/javacpp-cache").toAbsolutePath());
    opts.add("-Djava.io.tmpdir=" + Path.of("target/tmp").toAbsolutePath());
    return String.join(" ", opts);
  }

  static SparkSession.Builder session(String master) throws Exception {
    return SparkSession.builder().master(master).appName("lathe-it")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.local.dir", Path.of("target/spark-local").toAbsolutePath().toString())
        .config("spark.executor.extraClassPath", System.getProperty("java.class.path"))
        .config("spark.executor.extraJavaOptions", executorJavaOptions())
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")
        .config("spark.executor.memory", "1g")
        .config("spark.sql.shuffle.partitions", "2");
  }

  static String[] split(String s) {
    return Arrays.stream(s.split(" ")).filter(x -> !x.isBlank()).toArray(String[]::new);
  }
}
