package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.lathe.model.Config;
import ai.lathe.model.Faults;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.prep.PrepJob;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * The setup the job tests share: an embedded local[2] session, a scratch folder under target/, a
 * random tiny Llama with the llama2 tokenizer, the sample instructions prepared for SFT, DPO or
 * KTO, reference log-probs, and a crash injected after round 0.
 */
final class JobFixtures {
  static final Path TOKENIZER = Path.of("../data/tokenizer/llama2");
  static final String INSTRUCTIONS = "../data/sample/debian-faq/instructions.jsonl";

  private JobFixtures() {}

  /** local[2], two shuffle partitions, no UI, scratch under target/, the driver on loopback. */
  static SparkSession spark(String appName) {
    return SparkSession.builder().master("local[2]").appName(appName).config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2").config("spark.local.dir", "target/spark-local")
        .config("spark.driver.host", "127.0.0.1").getOrCreate();
  }

  /** A fresh folder under target/ (absolute), named prefix + a random suffix. */
  static Path scratch(String prefix) throws Exception {
    return Files.createTempDirectory(Path.of("target").toAbsolutePath(), prefix);
  }

  /** Stops the session and deletes the scratch folder. */
  static void close(SparkSession spark, Path dir) throws Exception {
    spark.stop();
    ai.lathe.model.io.AtomicDir.deleteTree(dir);
  }

  /** dir/model: a random F32 Llama of shape c (seed 1) with the llama2 tokenizer. */
  static Path randomModel(Path dir, LlamaConfig c) throws Exception {
    Path model = dir.resolve("model");
    RandomLlama.write(model, c, 1, "F32", TOKENIZER);
    return model;
  }

  /** The sample instructions prepared for SFT into out (10% validation). */
  static Path prepareSft(SparkSession spark, Path out, Path model, int maxLength) throws Exception {
    PrepJob.run(spark, Config.load(null, List.of("input=" + INSTRUCTIONS, "output=" + out, "tokenizer=" + model,
        "max_length=" + maxLength, "val_fraction=0.1")));
    return out;
  }

  /** The sample instructions prepared as preference pairs (alpaca, 48 tokens) into out; extra keys appended. */
  static Path preparePairs(SparkSession spark, Path out, Path model, String... extra) throws Exception {
    List<String> s = new ArrayList<>(List.of("input=" + INSTRUCTIONS, "output=" + out, "tokenizer=" + model,
        "max_length=48", "format=alpaca", "kind=preference", "max_reject_fraction=1.0"));
    s.addAll(List.of(extra));
    PrepJob.run(spark, Config.load(null, s));
    return out;
  }

  /** The reference log-probs of data under model, written to out; extra keys appended. */
  static Path refLogps(SparkSession spark, Path model, Path data, Path out, String... extra) throws Exception {
    List<String> s = new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + out));
    s.addAll(List.of(extra));
    RefLogpsJob.run(spark, Config.load(null, s));
    return out;
  }

  /**
   * Labelled completions of the first n sample prompts, each with its own answer (desirable) and
   * the answer of prompt i+7 (undesirable), written to dir/kto.jsonl and prepared for KTO (48
   * tokens) into dir/name.
   */
  static Path prepareKto(SparkSession spark, Path dir, Path model, int n, String name) throws Exception {
    ObjectMapper om = new ObjectMapper();
    List<String> in = Files.readAllLines(Path.of(INSTRUCTIONS)).subList(0, n);
    List<String> out = new ArrayList<>();
    for (int i = 0; i < in.size(); i++) {
      JsonNode a = om.readTree(in.get(i));
      JsonNode b = om.readTree(in.get((i + 7) % in.size()));
      out.add(om.writeValueAsString(Map.of("prompt", a.get("instruction").asText(), "completion",
          a.get("output").asText(), "label", true)));
      out.add(om.writeValueAsString(Map.of("prompt", a.get("instruction").asText(), "completion",
          b.get("output").asText(), "label", false)));
    }
    Path raw = dir.resolve("kto.jsonl");
    Files.write(raw, out);
    Path prepared = dir.resolve(name);
    PrepJob.run(spark, Config.load(null, List.of("input=" + raw, "output=" + prepared, "tokenizer=" + model,
        "max_length=48", "format=kto", "kind=kto", "max_reject_fraction=1.0")));
    return prepared;
  }

  /** While open, the averaging loop throws an IllegalStateException after round 0 (its checkpoint written). */
  static AutoCloseable crashAfterRound0() {
    return Faults.install((point, round, unused) -> {
      if (point.equals(Faults.ROUND_DONE) && round == 0) {
        throw new IllegalStateException("injected crash after round 0 (test)");
      }
    });
  }

  /** max |a − b| over all entries of two parameter lists of the same length. */
  static double maxDiff(float[][] a, float[][] b) {
    assertEquals(a.length, b.length);
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      for (int j = 0; j < a[i].length; j++) {
        d = Math.max(d, Math.abs(a[i][j] - b[i][j]));
      }
    }
    return d;
  }
}
