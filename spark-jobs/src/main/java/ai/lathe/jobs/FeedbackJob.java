package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.io.OutputGuard.Input;
import ai.lathe.prep.HadoopIo;
import ai.lathe.prep.JobMain;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * {@code lathe feedback}: judged items of an eval → data for the next round. A decided verdict
 * (a win or a loss under the eval's judge.calibration) whose candidate preference lies at least
 * margin from ½ becomes a preference pair (the preference is the eval's: under balanced
 * sigmoid(s), so the margin is |s| >= logit(½ + margin) on the bias-free log-odds s), chosen = the winner's answer, rejected = the loser's, in the prepared preference schema
 * that ref-logps and dpo read, plus provenance columns (judge_model, round, source = judge,
 * candidate_preference); prompts the candidate lost go to drop/lost.jsonl for curation.
 */
public final class FeedbackJob {
  public static final String USAGE = """
      usage: lathe feedback --config conf/feedback.yaml [--set key=value ...]
        Turns an eval's consistent verdicts into preference pairs (prepared preference data for
        ref-logps and dpo) and the prompts the candidate lost into an instruction drop (JSON lines).""";

  /** The preference schema plus provenance. */
  static final StructType SCHEMA = Schemas.PREFERENCE
      .add("judge_model", DataTypes.StringType, false)
      .add("round", DataTypes.IntegerType, false)
      .add("source", DataTypes.StringType, false)
      .add("candidate_preference", DataTypes.DoubleType, false);

  private FeedbackJob() {}

  public static void main(String[] argv) {
    System.exit(JobMain.run("feedback", argv, USAGE, (c, h) -> outputs(c), FeedbackJob::run));
  }

  static OutputGuard.Spec outputs(Config c) {
    return new OutputGuard.Spec("feedback", c.need("output"), OutputGuard.Kind.PREPARED, c.bool("overwrite", false),
        List.of(Input.of("eval", c.need("eval"))));
  }

  /** The job's keys (ConfigReference.FEEDBACK). */
  public record Settings(String eval, String output, double margin, int round, double valFraction, boolean allowEmpty) {
    public Settings {
      if (!(margin >= 0 && margin < 0.5) || !(valFraction >= 0 && valFraction < 1) || round < 1) {
        throw new IllegalArgumentException("margin must lie in [0, 0.5), val_fraction in [0, 1) and round be >= 1");
      }
    }

    public static Settings from(Config c) {
      return new Settings(c.need("eval"), c.need("output"), c.number("margin", 0.1), c.integer("round", 1),
          c.number("val_fraction", 0.0), c.bool("allow_empty", false));
    }
  }

  /** What the run wrote: pairs per lang/split and the prompts dropped for curation. */
  public record Result(long pairs, long lost, Map<String, Long> rows) {}

  public static Result run(SparkSession spark, Config c) throws Exception {
    Settings st = Settings.from(c);
    String eval = st.eval();
    String output = st.output();
    double margin = st.margin();
    int round = st.round();
    double valFraction = st.valFraction();
    Configuration hconf = spark.sparkContext().hadoopConfiguration();
    ai.lathe.prep.HadoopStore.check(outputs(c), hconf);
    ObjectMapper om = new ObjectMapper();
    String runFile = eval + "/lathe-eval.json";
    if (!HadoopIo.exists(runFile, hconf) || !HadoopIo.exists(eval + "/items", hconf)) {
      throw new IllegalArgumentException(eval + ": not the output of lathe eval (lathe-eval.json or items/ missing)");
    }
    JsonNode run = om.readTree(HadoopIo.readString(runFile, hconf));
    String model = ExecutorModels.forExecutors(run.path("config").path("model").asText());
    String judge = run.path("config").path("judge").path("model").asText(
        run.path("config").path("judge.model").asText(""));
    String calibration = om.readTree(HadoopIo.readString(eval + "/summary.json", hconf)).path("calibration")
        .path("mode").asText("none");
    List<Row> items = spark.read().parquet(eval + "/items").orderBy("id").collectAsList();
    List<Row> pairs = new ArrayList<>();
    StringBuilder drop = new StringBuilder();
    Map<String, Long> counts = new TreeMap<>();
    long lost = 0;
    for (Row r : items) {
      String outcome = r.getString(r.fieldIndex("outcome"));
      double pref = r.getDouble(r.fieldIndex("candidate_preference"));
      String id = r.getString(r.fieldIndex("id"));
      String lang = r.getString(r.fieldIndex("lang"));
      if (outcome.equals("loss")) {
        lost++;
        ObjectNode d = om.createObjectNode();
        d.put("id", id).put("lang", lang).put("instruction", r.getString(r.fieldIndex("prompt")))
            .put("candidate_answer", r.getString(r.fieldIndex("candidate_answer")))
            .put("baseline_answer", r.getString(r.fieldIndex("baseline_answer"))).put("candidate_preference", pref)
            .put("round", round).put("judge_model", judge).put("source", "judge");
        drop.append(om.writeValueAsString(d)).append('\n');
      }
      Row pair = pair(r, margin, round, judge, valFraction);
      if (pair != null) {
        pairs.add(pair);
        counts.merge(lang + "/" + pair.getString(3), 1L, Long::sum);
      }
    }
    if (pairs.isEmpty() && !st.allowEmpty()) {
      throw new IllegalArgumentException(eval + ": no consistent verdict at margin " + margin + " (" + items.size()
          + " items); " + output + " was not touched (allow_empty: true writes an empty output)");
    }
    String tmp = HadoopIo.tempSibling(output);
    try {
      spark.createDataFrame(pairs, SCHEMA).coalesce(1).write().mode(SaveMode.ErrorIfExists)
          .partitionBy("lang", "split").parquet(tmp + "/data");
      HadoopIo.writeString(tmp + "/drop/lost.jsonl", drop.toString(), hconf);
      HadoopIo.writeString(tmp + "/manifest.json", om.writerWithDefaultPrettyPrinter().writeValueAsString(
          manifest(om, c, eval, model, judge, round, margin, counts, lost, hconf)), hconf);
      HadoopIo.writeString(tmp + "/_SUCCESS", "", hconf);
      HadoopIo.commit(tmp, output, hconf);
    } catch (Exception e) {
      HadoopIo.deleteQuietly(tmp, hconf);
      throw e;
    }
    System.out.printf("feedback: %d pairs %s from %d judged items (margin %.2f%s, round %d), %d lost prompts -> %s"
        + " (drop/lost.jsonl)%n", pairs.size(), counts, items.size(), margin, calibration.equals("balanced")
        ? String.format(" on sigmoid(s): |s| >= %.3f", ai.lathe.model.eval.Calibration.logit(0.5 + margin)) : "",
        round, lost, output);
    return new Result(pairs.size(), lost, counts);
  }

  /**
   * A preference row from a judged item, or null: only a win or a loss with the candidate's
   * preference at least margin from ½, and only two different, non-empty answers.
   */
  static Row pair(Row r, double margin, int round, String judge, double valFraction) {
    String outcome = r.getString(r.fieldIndex("outcome"));
    double pref = r.getDouble(r.fieldIndex("candidate_preference"));
    if (!(outcome.equals("win") || outcome.equals("loss")) || Math.abs(pref - 0.5) < margin) {
      return null;
    }
    int[] prompt = RefLogpsJob.ints(r.getList(r.fieldIndex("prompt_ids")));
    int[] cand = RefLogpsJob.ints(r.getList(r.fieldIndex("candidate_ids")));
    int[] base = RefLogpsJob.ints(r.getList(r.fieldIndex("baseline_ids")));
    if (cand.length == 0 || base.length == 0 || java.util.Arrays.equals(cand, base)) {
      return null;
    }
    boolean win = outcome.equals("win");
    int[] chosen = concat(prompt, win ? cand : base);
    int[] rejected = concat(prompt, win ? base : cand);
    String id = r.getString(r.fieldIndex("id"));
    String split = valFraction > 0 && Long.parseUnsignedLong(EvalItems.sha("prompt:" + java.util.Arrays.toString(prompt))
        .substring(0, 15), 16) / (double) (1L << 60) < valFraction ? "validation" : "train";
    return RowFactory.create(EvalItems.sha("judge:" + round + ":" + id).substring(0, 16), id,
        r.getString(r.fieldIndex("lang")), split, EvalOutput.ints(chosen), prompt.length, EvalOutput.ints(rejected),
        prompt.length, true, judge, round, "judge", pref);
  }

  static int[] concat(int[] a, int[] b) {
    int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  static ObjectNode manifest(ObjectMapper om, Config c, String eval, String model, String judge, int round,
      double margin, Map<String, Long> counts, long lost, Configuration hconf) throws java.io.IOException {
    ObjectNode m = om.createObjectNode();
    m.put("schema_version", Schemas.PREFERENCE_SCHEMA_VERSION);
    m.put("kind", "preference");
    m.put("constructed_pairs", true);
    m.put("source", "judge");
    m.put("round", round);
    m.put("judge_model", judge);
    m.put("margin", margin);
    m.put("calibration", om.readTree(HadoopIo.readString(eval + "/summary.json", hconf)).path("calibration")
        .path("mode").asText("none"));
    m.put("code_version", ai.lathe.model.Version.get());
    m.put("input_fingerprint", EvalItems.sha(HadoopIo.readString(eval + "/summary.json", hconf)));
    m.put("tokenizer_sha256", PreparedData.sha256(model + "/tokenizer.json", hconf));
    ObjectNode n = m.putObject("counts");
    ObjectNode rows = n.putObject("rows");
    counts.forEach(rows::put);
    n.put("output_rows", counts.values().stream().mapToLong(Long::longValue).sum());
    n.put("lost_prompts", lost);
    m.set("config", c.root());
    return m;
  }
}
