package ai.lathe.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import ai.lathe.jobs.EvalJob;
import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.prep.PrepJob;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The eval job across executor JVMs on local-cluster[2,1,1024]: every item's answers, verdict
 * probabilities, calibrated score and outcome equal those of an in-process local[2] run, and the
 * items were judged in both executor JVMs, not in the driver.
 */
@Tag("slow")
class MultiJvmEvalTest {
  static final String[] COMPARED = {"id", "lang", "candidate_answer", "baseline_answer", "outcome", "raw_outcome"};
  static final String[] NUMBERS = {"p_a_candidate_first", "p_a_baseline_first", "judge_score", "position_bias",
      "candidate_preference"};

  static Config eval(Path model, Path judge, Path data, Path out) throws Exception {
    return Config.load(null, List.of("model=" + model, "data=" + data, "judge.model=" + judge, "max_items=6",
        "generation.max_new_tokens=6", "loss.max_rows=2", "loss.seq_len=96", "seed=3", "partitions=2",
        "judge.calibration=balanced", "output=" + out));
  }

  static List<Row> items(SparkSession spark, Path out) {
    return spark.read().parquet(out.resolve("items").toString()).orderBy("id").collectAsList();
  }

  static Set<String> executors(Path out) throws Exception {
    JsonNode s = new ObjectMapper().readTree(out.resolve("summary.json").toFile());
    Set<String> ids = new TreeSet<>();
    s.path("executors").forEach(e -> ids.add(e.asText()));
    return ids;
  }

  @Test
  void evalAcrossExecutorJvmsMatchesLocal() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "mjvm-eval");
    Path model = Fixtures.tiny(dir);
    Path judge = dir.resolve("judge");
    RandomLlama.write(judge, new LlamaConfig("llama", 32000, 64, 2, 4, 2, 96, 1e-5, 10000, false, 1024, 1, 2), 2,
        "F32", Fixtures.ROOT.resolve("data/tokenizer/llama2"));
    Path data = dir.resolve("prepared");
    List<Row> local;
    SparkSession l = Fixtures.session("local[2]").getOrCreate();
    try {
      PrepJob.run(l, Config.load(null, List.of("input=" + Fixtures.ROOT.resolve(
          "data/sample/debian-faq/instructions.jsonl"), "output=" + data, "tokenizer=" + model, "max_length=96",
          "val_fraction=0.1")));
      EvalJob.run(l, eval(model, judge, data, dir.resolve("eval-local")));
      local = items(l, dir.resolve("eval-local"));
    } finally {
      l.stop();
    }
    assertEquals(Set.of("driver"), executors(dir.resolve("eval-local")));
    // wait for both executors before the first task, so the items are spread over both JVMs
    SparkSession c = Fixtures.session("local-cluster[2,1,1024]")
        .config("spark.scheduler.minRegisteredResourcesRatio", "1.0").getOrCreate();
    try {
      EvalJob.run(c, eval(model, judge, data, dir.resolve("eval-cluster")));
      List<Row> cluster = items(c, dir.resolve("eval-cluster"));
      assertEquals(6, local.size());
      assertEquals(local.size(), cluster.size());
      List<String> outcomes = new ArrayList<>();
      for (int i = 0; i < local.size(); i++) {
        Row a = local.get(i);
        Row b = cluster.get(i);
        for (String f : COMPARED) {
          assertEquals(a.<String>getAs(f), b.<String>getAs(f), f + " of item " + i);
        }
        for (String f : NUMBERS) {
          assertEquals(a.<Double>getAs(f), b.<Double>getAs(f), 1e-9, f + " of item " + i);
        }
        outcomes.add(a.getAs("outcome"));
      }
      // balanced calibration decides items (a random judge's raw orders mostly disagree)
      assertFalse(outcomes.stream().allMatch("tie"::equals), outcomes.toString());
      // the executors did the work: items were judged in both executor JVMs and none in the driver
      assertEquals(Set.of("0", "1"), executors(dir.resolve("eval-cluster")));
    } finally {
      c.stop();
    }
  }
}
