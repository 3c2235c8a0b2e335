package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.eval.Outcome;
import ai.lathe.prep.JobMain;
import ai.lathe.prep.PrepJob;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvalJobTest {
  static SparkSession spark(String master) {
    return SparkSession.builder().master(master).appName("eval-test").config("spark.ui.enabled", "false")
        .config("spark.local.dir", "target/spark-local").config("spark.driver.host", "127.0.0.1").getOrCreate();
  }

  static Path model(Path dir, int maxPos, long seed) throws Exception {
    RandomLlama.write(dir, new LlamaConfig("llama", 32000, 32, 1, 4, 2, 48, 1e-5, 10000, false, maxPos, 1, 2), seed,
        "F32", Path.of("../data/tokenizer/llama2"));
    return dir;
  }

  static Config cfg(String... kv) throws Exception {
    return Config.load(null, List.of(kv));
  }

  /** (id, both verdict probabilities, both answers) of every item, in id order. */
  static List<String> rows(SparkSession spark, Path out) {
    List<String> l = new ArrayList<>();
    for (Row r : spark.read().parquet(out.resolve("items").toString()).orderBy("id").collectAsList()) {
      l.add(r.getString(r.fieldIndex("id")) + "|" + r.getDouble(r.fieldIndex("p_a_candidate_first")) + "|"
          + r.getDouble(r.fieldIndex("p_a_baseline_first")) + "|" + r.getString(r.fieldIndex("candidate_answer"))
          + "|" + r.getString(r.fieldIndex("baseline_answer")));
    }
    return l;
  }

  /**
   * The eval end to end on a random model (candidate: base + a random adapter, baseline: the data's
   * reference answers, judge: another random model): output, statistics against the items, the same
   * seed gives the same items and verdicts, local[1] equals local[2], the gate's exit 3 keeps the
   * previous output, and feedback pairs load through DPO's data path.
   */
  @Test
  void evalFeedbackAndGate(@TempDir Path tmp) throws Exception {
    Path m = model(tmp.resolve("model"), 1024, 1);
    Path judge = model(tmp.resolve("judge"), 1024, 2);
    Path data = tmp.resolve("prepared");
    Path out = tmp.resolve("eval");
    SparkSession spark = spark("local[2]");
    List<String> first;
    List<String> kv;
    try {
      PrepJob.run(spark, cfg("input=../data/sample/debian-faq/instructions.jsonl", "output=" + data,
          "tokenizer=" + m, "max_length=96", "val_fraction=0.1"));
      kv = List.of("model=" + m, "data=" + data, "judge.model=" + judge, "max_items=6",
          "generation.max_new_tokens=6", "loss.max_rows=4", "loss.seq_len=96", "loss.general=" + data, "seed=3");
      EvalJob.Result r = EvalJob.run(spark, Config.load(null, concat(kv, "output=" + out)));
      assertEquals(6, r.items().size());
      for (String f : List.of("summary.json", "lathe-eval.json", "winrate.png", "items")) {
        assertTrue(Files.exists(out.resolve(f)), f);
      }
      JsonNode sum = new ObjectMapper().readTree(out.resolve("summary.json").toFile());
      // the win rate is the mean of the items' values (win 1, loss 0, tie/inconsistent ½)
      double total = 0;
      int wins = 0;
      for (Row row : spark.read().parquet(out.resolve("items").toString()).collectAsList()) {
        Outcome o = Outcome.of(row.getDouble(row.fieldIndex("p_a_candidate_first")),
            row.getDouble(row.fieldIndex("p_a_baseline_first")));
        assertEquals(o.word(), row.getString(row.fieldIndex("outcome")));
        total += o.value;
        wins += o == Outcome.WIN ? 1 : 0;
        assertEquals(row.getString(row.fieldIndex("candidate_answer")).length(),
            row.getInt(row.fieldIndex("candidate_length")));
        assertTrue(row.getInt(row.fieldIndex("candidate_tokens")) <= 6);
      }
      assertEquals(total / 6, sum.path("overall").path("win_rate").asDouble(), 1e-12);
      assertEquals(wins, sum.path("overall").path("wins").asInt());
      // its 95% interval is Wilson's: (2np̂ + z² ∓ z·√(z² + 4np̂(1 − p̂))) / (2(n + z²)), n = 6
      double ph = total / 6;
      double z = 1.959963984540054;
      double root = z * Math.sqrt(z * z + 4 * 6 * ph * (1 - ph));
      JsonNode ci = sum.path("overall").path("win_rate_ci95");
      assertEquals(Math.max(0, (2 * 6 * ph + z * z - root) / (2 * (6 + z * z))), ci.get(0).asDouble(), 1e-12,
          sum.toString());
      assertEquals(Math.min(1, (2 * 6 * ph + z * z + root) / (2 * (6 + z * z))), ci.get(1).asDouble(), 1e-12,
          sum.toString());
      assertTrue(sum.path("loss").path("heldout").path("candidate").asDouble() > 5, sum.toString());
      assertTrue(sum.path("per_lang").size() >= 1);
      first = rows(spark, out);
      // the same seed: the same items and verdicts
      EvalJob.run(spark, Config.load(null, concat(kv, "output=" + tmp.resolve("eval-again"))));
      assertEquals(first, rows(spark, tmp.resolve("eval-again")));
      // gate: exit 3, nothing published, the previous output kept
      String before = Files.readString(out.resolve("summary.json"));
      var e = assertThrows(JobMain.ExitCode.class, () -> EvalJob.run(spark, Config.load(null,
          concat(kv, "output=" + out, "gate.min_win_rate=1.01"))));
      assertEquals(3, e.code);
      assertTrue(e.getMessage().contains("below gate.min_win_rate"), e.getMessage());
      assertEquals(before, Files.readString(out.resolve("summary.json")));
      // feedback, on judged items with known verdicts (written by the eval's own writer): consistent
      // verdicts at least the margin from ½ become pairs in the preference schema that dpo reads
      List<EvalWorker.Judged> items = r.items();
      double[][] p = {{0.9, 0.1}, {0.2, 0.8}, {0.9, 0.9}, {0.55, 0.45}, {0.1, 0.95}, {0.5, 0.2}};
      String[] expect = {"win", "loss", "inconsistent", "win", "loss", "tie"};
      List<EvalWorker.Judged> known = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        EvalWorker.Judged j = items.get(i);
        known.add(new EvalWorker.Judged(j.id(), j.lang(), j.prompt(), j.promptIds(), j.candidate(), j.candidateIds(),
            j.candidateFinish(), j.baseline(), j.baselineIds(), j.baselineFinish(), p[i][0], p[i][1], j.executor()));
      }
      Path judged = tmp.resolve("eval-known");
      EvalSettings es = EvalSettings.from(Config.load(null, concat(kv, "output=" + judged)));
      EvalOutput.write(spark, es, Config.load(null, concat(kv, "output=" + judged)), EvalJob.summary(es, known), known,
          spark.sparkContext().hadoopConfiguration());
      List<Row> itemRows = spark.read().parquet(judged.resolve("items").toString()).orderBy("id").collectAsList();
      for (int i = 0; i < 6; i++) {
        assertEquals(expect[i], itemRows.get(i).getString(itemRows.get(i).fieldIndex("outcome")));
      }
      Path fb = tmp.resolve("feedback");
      FeedbackJob.Result f = FeedbackJob.run(spark, cfg("eval=" + judged, "output=" + fb, "margin=0.1"));
      assertEquals(3, f.pairs()); // items 0, 1 and 4; item 3's preference 0.55 is within the margin
      assertEquals(2, f.lost());
      assertEquals(2, Files.readAllLines(fb.resolve("drop/lost.jsonl")).size());
      Config dpo = cfg("model=" + m, "data=" + fb, "output=" + tmp.resolve("dpo"), "reference.on_the_fly=true",
          "train.seq_len=128");
      JsonNode manifest = PreparedData.checkManifest(fb.toString(), m.toString(),
          spark.sparkContext().hadoopConfiguration(), "preference", ai.lathe.prep.Schemas.PREFERENCE_SCHEMA_VERSION);
      var df = PrefData.load(spark, PrefSettings.from(dpo, "dpo"), manifest, spark.sparkContext().hadoopConfiguration());
      assertEquals(3, PrefData.examples(df, "train", false).count());
      assertTrue(List.of(df.columns()).contains("ref_chosen_logp"));
      for (Row pr : spark.read().parquet(fb.resolve("data").toString()).collectAsList()) {
        int k = List.of(itemRows.stream().map(x -> x.getString(0)).toArray()).indexOf(pr.getString(pr.fieldIndex("source_id")));
        EvalWorker.Judged j = known.get(k);
        boolean won = expect[k].equals("win");
        int[] winner = won ? j.candidateIds() : j.baselineIds();
        int[] chosen = RefLogpsJob.ints(pr.getList(pr.fieldIndex("chosen_ids")));
        int cs = pr.getInt(pr.fieldIndex("chosen_start"));
        assertEquals(j.promptIds().length, cs);
        assertTrue(java.util.Arrays.equals(winner, java.util.Arrays.copyOfRange(chosen, cs, chosen.length)));
        assertTrue(java.util.Arrays.equals(j.promptIds(), java.util.Arrays.copyOf(chosen, cs)));
        assertEquals("judge", pr.getString(pr.fieldIndex("source")));
        assertEquals(1, pr.getInt(pr.fieldIndex("round")));
        assertEquals(judge.toString(), pr.getString(pr.fieldIndex("judge_model")));
      }
      // the same verdicts under judge.calibration balanced: outcomes from s = (logit p1 − logit p2) / 2,
      // raw_outcome and the summary's raw_inconsistent still from the uncalibrated rule
      String[] balanced = {"win", "loss", "tie", "win", "loss", "win"};
      Path cal = tmp.resolve("eval-balanced");
      List<String> calKv = concat(kv, "output=" + cal, "judge.calibration=balanced");
      EvalSettings cs = EvalSettings.from(Config.load(null, calKv));
      ObjectNode calSum = EvalJob.summary(cs, known);
      EvalOutput.write(spark, cs, Config.load(null, calKv), calSum, known, spark.sparkContext().hadoopConfiguration());
      List<Row> calRows = spark.read().parquet(cal.resolve("items").toString()).orderBy("id").collectAsList();
      for (int i = 0; i < 6; i++) {
        Row cr = calRows.get(i);
        assertEquals(balanced[i], cr.getString(cr.fieldIndex("outcome")), "item " + i);
        assertEquals(expect[i], cr.getString(cr.fieldIndex("raw_outcome")), "item " + i);
        double s = (Math.log(p[i][0] / (1 - p[i][0])) - Math.log(p[i][1] / (1 - p[i][1]))) / 2;
        assertEquals(s, cr.getDouble(cr.fieldIndex("judge_score")), 1e-12);
        assertEquals(1 / (1 + Math.exp(-s)), cr.getDouble(cr.fieldIndex("candidate_preference")), 1e-12);
      }
      JsonNode calOverall = new ObjectMapper().readTree(cal.resolve("summary.json").toFile()).path("overall");
      assertEquals("balanced", calSum.path("calibration").path("mode").asText());
      assertEquals(1, calOverall.path("raw_inconsistent").asInt());
      assertEquals(0, calOverall.path("inconsistent").asInt());
      assertEquals(3.5 / 6, calOverall.path("win_rate").asDouble(), 1e-12);
      // feedback on the calibrated eval: margin 0.1 on sigmoid(s), i.e. |s| >= logit(0.6) = 0.405: items
      // 0, 1, 4 and 5 (item 3's s = 0.201 is inside it, item 2 is a tie)
      FeedbackJob.Result cf = FeedbackJob.run(spark, cfg("eval=" + cal, "output=" + tmp.resolve("feedback-balanced"),
          "margin=0.1"));
      assertEquals(4, cf.pairs());
      assertEquals(2, cf.lost());
    } finally {
      spark.stop();
    }
    SparkSession one = spark("local[1]");
    try {
      EvalJob.run(one, Config.load(null, concat(kv, "output=" + tmp.resolve("eval-local1"))));
      assertEquals(first, rows(one, tmp.resolve("eval-local1")));
    } finally {
      one.stop();
    }
  }

  /** Bad input: one clear error naming the input, and no output. */
  @Test
  void badInputFailsBeforeWriting(@TempDir Path tmp) throws Exception {
    Path m = model(tmp.resolve("model"), 40, 1);
    Path data = tmp.resolve("prepared");
    SparkSession spark = spark("local[2]");
    try {
      PrepJob.run(spark, cfg("input=../data/sample/debian-faq/instructions.jsonl", "output=" + data,
          "tokenizer=" + m, "max_length=96"));
      List<String> kv = List.of("model=" + m, "data=" + data, "judge.model=" + m, "generation.max_new_tokens=4",
          "output=" + tmp.resolve("out"));
      var empty = assertThrows(IllegalArgumentException.class, () -> EvalJob.run(spark,
          Config.load(null, concat(kv, "data_langs=[xx]"))));
      assertTrue(empty.getMessage().contains("no prompts to evaluate"), empty.getMessage());
      var labels = assertThrows(IllegalArgumentException.class, () -> EvalJob.run(spark,
          Config.load(null, concat(kv, "judge.labels=[reply one, reply number two]"))));
      assertTrue(labels.getMessage().contains("cannot encode the answer labels"), labels.getMessage());
      var window = assertThrows(IllegalArgumentException.class, () -> EvalJob.run(spark, Config.load(null, kv)));
      assertTrue(window.getMessage().contains("exceeds the model's max_position_embeddings 40")
          && window.getMessage().contains("row id="), window.getMessage());
      assertFalse(Files.exists(tmp.resolve("out")));
      assertEquals(List.of("model", "prepared"), Files.list(tmp).map(p -> p.getFileName().toString()).sorted().toList());
    } finally {
      spark.stop();
    }
  }

  static List<String> concat(List<String> a, String... b) {
    List<String> l = new ArrayList<>(a);
    l.addAll(List.of(b));
    return l;
  }
}
