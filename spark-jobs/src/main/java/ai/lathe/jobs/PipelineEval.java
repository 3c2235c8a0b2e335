package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.config.ConfigReference;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.SparkSession;

/**
 * The pipeline's third phase, after DPO: eval (DPO adapter vs SFT adapter, judged by the base) →
 * feedback pairs from the consistent verdicts → ref-logps under the DPO adapter → a second DPO
 * round from it on those pairs → eval again; prints both win rates with their 95% intervals.
 * Every stage's config is built and checked before Spark starts.
 */
final class PipelineEval {
  private PipelineEval() {}

  record Plan(boolean enabled, Config eval1, Config feedback, Config refLogps, Config dpo2, Config eval2) {}

  static Plan plan(Config c, PipelineCommand.Plan p) throws Exception {
    Path work = p.work();
    String model = p.model().toString();
    Path fb = work.resolve("prepared/feedback");
    Path fbRef = work.resolve("prepared/feedback-ref");
    Path dpo2Out = work.resolve("adapters/dpo-round2");
    Config eval1 = evalStage(c, model, p.prepared(), p.dpoOut(), p.adapter(), work.resolve("eval/round1"));
    Config feedback = PipelineCommand.stage(c, "feedback", "conf/feedback.yaml", ConfigReference.FEEDBACK,
        List.of("eval=" + work.resolve("eval/round1"), "output=" + fb, "allow_empty=true"));
    Config ref = PipelineCommand.stage(c, "ref_logps", "conf/ref-logps.yaml", ConfigReference.REF_LOGPS,
        List.of("model=" + model, "data=" + fb, "output=" + fbRef, "reference.adapter=" + p.dpoOut()));
    Config dpo2 = PipelineCommand.stage(c, "dpo", "conf/dpo.yaml", null, List.of("model=" + model, "data=" + fbRef,
        "output=" + dpo2Out, "adapter=" + p.dpoOut(), "reference.adapter=" + p.dpoOut()));
    if (c.node("feedback.dpo_set") != null) {
      c.node("feedback.dpo_set").fields().forEachRemaining(e -> dpo2.set(e.getKey(), e.getValue(),
          c.source() + " feedback.dpo_set." + e.getKey()));
    }
    dpo2.validate(ConfigReference.DPO);
    Config eval2 = evalStage(c, model, p.prepared(), dpo2Out, p.adapter(), work.resolve("eval/round2"));
    return new Plan(c.bool("eval.enabled", true), eval1, feedback, ref, dpo2, eval2);
  }

  private static Config evalStage(Config c, String model, Path data, Path candidate, Path baseline, Path out)
      throws Exception {
    return PipelineCommand.stage(c, "eval", "conf/eval.yaml", ConfigReference.EVAL, List.of("model=" + model,
        "data=" + data, "candidate.adapter=" + candidate, "baseline.kind=adapter", "baseline.adapter=" + baseline,
        "judge.model=" + model, "output=" + out));
  }

  /** Runs the phase; returns the summary lines to print at the end. */
  static String run(SparkSession spark, Plan e) throws Exception {
    if (!e.enabled()) {
      return "";
    }
    var hconf = spark.sparkContext().hadoopConfiguration();
    System.out.println("== pipeline: eval round 1 (DPO vs SFT, judged by the base)");
    EvalJob.Result r1 = PipelineCommand.locked(spark, EvalJob.outputs(e.eval1()), () -> EvalJob.run(spark, e.eval1()));
    System.out.println("== pipeline: feedback pairs from the judge's decided verdicts");
    FeedbackJob.Result f = PipelineCommand.locked(spark, FeedbackJob.outputs(e.feedback()),
        () -> FeedbackJob.run(spark, e.feedback()));
    String line1 = "eval round 1:  DPO vs SFT win rate " + interval(r1);
    if (f.pairs() == 0) {
      return line1 + "\nfeedback:      no decided verdict above the margin (judge scores s: "
          + r1.summary().path("overall").path("judge_score_quantiles") + "); no second DPO round";
    }
    System.out.println("== pipeline: reference log-probs of the feedback pairs (reference = the DPO adapter)");
    PipelineCommand.locked(spark, JobOutputs.refLogps(e.refLogps()), () -> RefLogpsJob.run(spark, e.refLogps()));
    System.out.println("== pipeline: dpo round 2 on the feedback pairs (from the DPO adapter)");
    PipelineCommand.locked(spark, JobOutputs.pref(e.dpo2(), "dpo"), () -> PrefTrainJob.run(spark, e.dpo2(), "dpo"));
    System.out.println("== pipeline: eval round 2 (DPO round 2 vs SFT)");
    EvalJob.Result r2 = PipelineCommand.locked(spark, EvalJob.outputs(e.eval2()), () -> EvalJob.run(spark, e.eval2()));
    return line1 + "\nfeedback:      " + f.pairs() + " pairs " + f.rows() + ", " + f.lost() + " lost prompts -> "
        + e.feedback().need("output") + "\neval round 2:  DPO round 2 vs SFT win rate " + interval(r2)
        + "\n               (round 2 trained on pairs from the same held-out prompts it is judged on)";
  }

  static String interval(EvalJob.Result r) {
    var a = r.summary().path("overall");
    return String.format("%.3f ± %.3f (95%% CI %.3f-%.3f, length-controlled %.3f, n=%d: %d wins, %d losses, %d ties;"
        + " judge calibration %s, uncalibrated %d inconsistent, mean position bias %.2f log-odds)",
        a.path("win_rate").asDouble(), a.path("win_rate_se").asDouble(Double.NaN),
        a.path("win_rate_ci95").get(0).asDouble(Double.NaN), a.path("win_rate_ci95").get(1).asDouble(Double.NaN),
        a.path("length_controlled_win_rate").asDouble(Double.NaN), a.path("n").asInt(), a.path("wins").asInt(),
        a.path("losses").asInt(), a.path("ties").asInt(), r.summary().path("calibration").path("mode").asText(),
        a.path("raw_inconsistent").asInt(), a.path("mean_position_bias").asDouble(Double.NaN));
  }
}
