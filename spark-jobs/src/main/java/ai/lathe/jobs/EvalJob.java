package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.Version;
import ai.lathe.model.eval.BiasReport;
import ai.lathe.model.eval.Calibration;
import ai.lathe.model.eval.WinStats;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.io.OutputGuard.Input;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.HfTokenizer;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.HadoopIo;
import ai.lathe.prep.JobMain;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * {@code lathe eval}: a candidate (base + adapter) and a baseline (the base, another adapter or
 * the data's reference answers) answer held-out prompts spread over the executors; a judge model
 * compares each pair in both orders, reading its verdict from the label log-probs. Writes items/
 * (Parquet, one row per item), summary.json (win rates with standard errors, ties,
 * inconsistencies, lengths, per language, length-controlled win rate, reference-free losses),
 * winrate.png and lathe-eval.json, committed atomically; below gate.min_win_rate it exits 3 and
 * publishes nothing. {@code spark-submit --class ai.lathe.jobs.EvalJob lathe-jobs.jar --config eval.yaml}.
 */
public final class EvalJob {
  public static final String USAGE = """
      usage: lathe eval --config conf/eval.yaml [--set key=value ...]
        Candidate vs baseline answers on held-out prompts, judged pairwise in both orders by a judge
        model's label log-probs; win rates (SE, per language, length-controlled), losses; exit 3
        (nothing published) when the win rate is below gate.min_win_rate.""";

  public static final int GATE_FAILED = 3;

  private EvalJob() {}

  public static void main(String[] argv) {
    System.exit(JobMain.run("eval", argv, USAGE, (c, h) -> outputs(c), EvalJob::run));
  }

  static OutputGuard.Spec outputs(Config c) {
    EvalSettings s = EvalSettings.from(c);
    List<Input> in = new ArrayList<>(List.of(Input.of("model", s.model()), Input.of("judge model", s.judgeModel())));
    for (String[] p : new String[][] {{"data", s.data()}, {"prompts", s.prompts()}, {"candidate adapter",
        s.candidateAdapter()}, {"baseline adapter", s.baselineAdapter()}, {"judge adapter", s.judgeAdapter()},
        {"general data", s.lossGeneral()}, {"judge prompt file", s.judgePromptFile()}}) {
      if (p[1] != null) {
        in.add(Input.of(p[0], p[1]));
      }
    }
    return new OutputGuard.Spec("eval", s.output(), OutputGuard.Kind.EVAL, c.bool("overwrite", false), in);
  }

  /** The job's result: the summary written and the judged items (sorted by id). */
  public record Result(ObjectNode summary, List<EvalWorker.Judged> items) {
    public double winRate() {
      return summary.path("overall").path("win_rate").asDouble(Double.NaN);
    }
  }

  public static Result run(SparkSession spark, Config c) throws Exception {
    EvalSettings s = EvalSettings.from(c);
    Configuration hconf = spark.sparkContext().hadoopConfiguration();
    ai.lathe.prep.HadoopStore.check(outputs(c), hconf);
    String promptText = s.judgePromptFile() == null ? null : HadoopIo.readString(s.judgePromptFile(), hconf);
    s.judgePrompt(promptText); // a template without its placeholders fails before any work
    String judgeTemplate = s.judgeTemplate() != null ? s.judgeTemplate()
        : ChatTemplate.defaultName(ExecutorModels.localCopy(s.judgeModel()), "llama2");
    try (HfTokenizer jt = HfTokenizer.open(ExecutorModels.localCopy(s.judgeModel()).resolve("tokenizer.json"))) {
      ai.lathe.model.eval.Judge.checkLabels(jt, ChatTemplate.of(judgeTemplate), s.judgePrompt(promptText));
    }
    List<EvalItems.Item> items;
    int maxPos = PreparedData.modelConfig(s.model(), hconf).maxPositionEmbeddings();
    try (HfTokenizer tok = HfTokenizer.open(ExecutorModels.localCopy(s.model()).resolve("tokenizer.json"))) {
      items = EvalItems.load(spark, s, tok, maxPos);
    }
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    int parts = Math.min(items.size(), s.partitions() > 0 ? s.partitions() : jsc.defaultParallelism());
    EvalWorker.Plan plan = new EvalWorker.Plan(s, promptText, judgeTemplate);
    System.out.printf("eval: %d items over %d partitions; candidate %s, baseline %s, judge %s%n", items.size(), parts,
        describe(s.model(), s.candidateAdapter()), s.baselineKind().equals("adapter")
            ? describe(s.model(), s.baselineAdapter()) : s.baselineKind(), describe(s.judgeModel(), s.judgeAdapter()));
    List<EvalWorker.Judged> judged = new ArrayList<>(jsc.parallelize(items, parts)
        .mapPartitions(it -> EvalWorker.run(plan, it)).collect());
    judged.sort(Comparator.comparing(EvalWorker.Judged::id));
    ObjectNode summary = summary(s, judged);
    summary.set("loss", losses(spark, s));
    double wr = summary.path("overall").path("win_rate").asDouble();
    ObjectNode gate = summary.putObject("gate");
    gate.put("min_win_rate", s.minWinRate());
    gate.put("passed", wr >= s.minWinRate());
    print(summary);
    if (wr < s.minWinRate()) {
      throw new JobMain.ExitCode(GATE_FAILED, String.format("gate: win rate %.4f is below gate.min_win_rate %.4f;"
          + " nothing was published (%s keeps its previous contents)", wr, s.minWinRate(), s.output()));
    }
    EvalOutput.write(spark, s, c, summary, judged, hconf);
    System.out.printf("eval: %d items judged -> %s%n", judged.size(), s.output());
    return new Result(summary, judged);
  }

  static String describe(String model, String adapter) {
    return model + (adapter == null ? "" : " + " + adapter);
  }

  /** Overall and per-language statistics of the judged items. */
  static ObjectNode summary(EvalSettings s, List<EvalWorker.Judged> judged) {
    ObjectMapper om = new ObjectMapper();
    ObjectNode o = om.createObjectNode();
    o.put("code_version", Version.get());
    o.putObject("candidate").put("model", s.model()).put("adapter", s.candidateAdapter());
    o.putObject("baseline").put("kind", s.baselineKind()).put("model", s.model()).put("adapter", s.baselineAdapter());
    o.putObject("judge").put("model", s.judgeModel()).put("adapter", s.judgeAdapter());
    Calibration cal = s.calibration();
    o.putObject("calibration").put("mode", cal.word()).put("margin", cal.margin());
    var executors = o.putArray("executors"); // the Spark executors that judged the items ("driver" in local mode)
    judged.stream().map(EvalWorker.Judged::executor).distinct().sorted().forEach(executors::add);
    List<WinStats.Item> all = new ArrayList<>();
    List<double[]> allP = new ArrayList<>();
    Map<String, List<WinStats.Item>> byLang = new TreeMap<>();
    Map<String, List<double[]>> byLangP = new TreeMap<>();
    for (EvalWorker.Judged j : judged) {
      WinStats.Item it = new WinStats.Item(cal.decide(j.pACandidateFirst(), j.pABaselineFirst()),
          j.candidate().length(), j.baseline().length());
      double[] p = {j.pACandidateFirst(), j.pABaselineFirst()};
      all.add(it);
      allP.add(p);
      byLang.computeIfAbsent(j.lang(), k -> new ArrayList<>()).add(it);
      byLangP.computeIfAbsent(j.lang(), k -> new ArrayList<>()).add(p);
    }
    o.set("overall", bias(stats(om, WinStats.of(all)), BiasReport.of(allP)));
    ObjectNode per = o.putObject("per_lang");
    byLang.forEach((lang, l) -> per.set(lang, bias(stats(om, WinStats.of(l)), BiasReport.of(byLangP.get(lang)))));
    return o;
  }

  /** The judge's position bias beside the win rate, whichever rule decided the outcomes. */
  static ObjectNode bias(ObjectNode n, BiasReport b) {
    n.put("raw_inconsistent", b.rawInconsistent());
    num(n, "mean_position_bias", b.meanPositionBias());
    ObjectNode q = n.putObject("judge_score_quantiles");
    for (int i = 0; i < BiasReport.QS.length; i++) {
      num(q, String.valueOf(BiasReport.QS[i]), b.scoreQuantiles()[i]);
    }
    return n;
  }

  static ObjectNode stats(ObjectMapper om, WinStats w) {
    ObjectNode n = om.createObjectNode();
    n.put("n", w.n());
    n.put("wins", w.wins());
    n.put("losses", w.losses());
    n.put("ties", w.ties() + w.inconsistent());
    n.put("inconsistent", w.inconsistent());
    num(n, "win_rate", w.winRate());
    num(n, "win_rate_se", w.stdErr());
    // the Wilson score interval: within [0, 1], unlike win rate ± 1.96·SE
    var ci = n.putArray("win_rate_ci95");
    ci.add(finite(w.ci95().lower()));
    ci.add(finite(w.ci95().upper()));
    num(n, "length_controlled_win_rate", w.lcWinRate());
    num(n, "avg_length_candidate", w.avgLenCandidate());
    num(n, "avg_length_baseline", w.avgLenBaseline());
    return n;
  }

  /** JSON has no NaN: an undefined statistic (one item's standard error) is null. */
  static void num(ObjectNode n, String key, double v) {
    if (Double.isFinite(v)) {
      n.put(key, v);
    } else {
      n.putNull(key);
    }
  }

  private static com.fasterxml.jackson.databind.JsonNode finite(double v) {
    return Double.isFinite(v) ? com.fasterxml.jackson.databind.node.DoubleNode.valueOf(v)
        : com.fasterxml.jackson.databind.node.NullNode.getInstance();
  }

  /**
   * Reference-free: mean token loss of the candidate, the base and (kind adapter) the baseline on
   * the data's split and on the general (replay) set, computed on the driver from at most
   * loss.max_rows rows (the first by id).
   */
  static ObjectNode losses(SparkSession spark, EvalSettings s) {
    ObjectNode o = new ObjectMapper().createObjectNode();
    Map<String, String> sets = new LinkedHashMap<>();
    if (s.data() != null) {
      sets.put("heldout", s.data());
    }
    if (s.lossGeneral() != null) {
      sets.put("general", s.lossGeneral());
    }
    Map<String, String> models = new LinkedHashMap<>();
    models.put("candidate", s.candidateAdapter());
    models.put("base", null);
    if (s.baselineKind().equals("adapter")) {
      models.put("baseline", s.baselineAdapter());
    }
    for (var set : sets.entrySet()) {
      List<ai.lathe.model.text.ChatTemplate.Tokens> rows = PreparedData.examples(spark, set.getValue(), s.split(),
          s.langs()).sortBy(r -> r.id(), true, 1).map(PreparedData::tokens).take(s.lossMaxRows() == 0 ? Integer.MAX_VALUE
          : s.lossMaxRows());
      if (rows.isEmpty()) {
        continue;
      }
      ObjectNode n = o.putObject(set.getKey());
      n.put("rows", rows.size());
      for (var m : models.entrySet()) {
        LlamaModel lm = RefLogpsJob.engine(s.model(), s.quant(), m.getValue());
        lm.setAdaptersEnabled(m.getValue() != null);
        n.put(m.getKey(), SftTrainer.validationLoss(lm, rows, 4, s.lossSeqLen()));
      }
    }
    return o;
  }

  static void print(ObjectNode summary) {
    var a = summary.path("overall");
    System.out.printf("eval: win rate %.3f ± %.3f (95%% CI %.3f-%.3f), length-controlled %.3f; %d wins, %d losses,"
        + " %d ties (%d inconsistent) of %d; mean length %.0f vs %.0f chars%n", a.path("win_rate").asDouble(),
        a.path("win_rate_se").asDouble(), a.path("win_rate_ci95").get(0).asDouble(),
        a.path("win_rate_ci95").get(1).asDouble(), a.path("length_controlled_win_rate").asDouble(),
        a.path("wins").asInt(), a.path("losses").asInt(), a.path("ties").asInt(), a.path("inconsistent").asInt(),
        a.path("n").asInt(), a.path("avg_length_candidate").asDouble(), a.path("avg_length_baseline").asDouble());
    var q = a.path("judge_score_quantiles");
    System.out.printf("eval: judge calibration %s (margin %s); the uncalibrated rule calls %d of %d inconsistent; mean"
        + " position bias b = %.3f log-odds (b > 0 favours position A, b < 0 position B); s = (logit p1 - logit p2)/2 min/quartiles/max %.3f %.3f %.3f %.3f"
        + " %.3f%n", summary.path("calibration").path("mode").asText(), summary.path("calibration").path("margin"),
        a.path("raw_inconsistent").asInt(), a.path("n").asInt(), a.path("mean_position_bias").asDouble(Double.NaN),
        q.path("0.0").asDouble(Double.NaN), q.path("0.25").asDouble(Double.NaN), q.path("0.5").asDouble(Double.NaN),
        q.path("0.75").asDouble(Double.NaN), q.path("1.0").asDouble(Double.NaN));
    summary.path("per_lang").fields().forEachRemaining(e -> System.out.printf("eval:   %s: %.3f ± %.3f (n=%d)%n",
        e.getKey(), e.getValue().path("win_rate").asDouble(), e.getValue().path("win_rate_se").asDouble(),
        e.getValue().path("n").asInt()));
    if (!summary.path("loss").isEmpty()) {
      System.out.println("eval: reference-free losses " + summary.path("loss"));
    }
  }
}
