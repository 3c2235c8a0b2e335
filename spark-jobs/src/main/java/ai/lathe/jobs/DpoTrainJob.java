package ai.lathe.jobs;

import ai.lathe.prep.JobMain;

/**
 * DPO-family preference optimisation on prepared preference Parquet with reference log-probs.
 * {@code spark-submit --class ai.lathe.jobs.DpoTrainJob lathe-jobs.jar --config dpo.yaml}.
 */
public final class DpoTrainJob {
  public static final String USAGE = """
      usage: lathe dpo --config conf/dpo.yaml [--set key=value ...]
        DPO (loss.type sigmoid | ipo | hinge | robust) on prepared preference data that has
        ref_chosen_logp/ref_rejected_logp (lathe ref-logps), by parameter averaging; starts from
        `adapter` (e.g. the SFT adapter) or a fresh LoRA. Writes a PEFT adapter with lathe-run.json,
        metrics.jsonl (TRL's rewards/* and logps/* names), loss.png and rewards.png. With
        train.mode full it trains every weight against the frozen base and writes a Hugging Face model folder.""";

  private DpoTrainJob() {}

  public static void main(String[] argv) {
    System.exit(JobMain.run("dpo", argv, USAGE, (c, h) -> JobOutputs.pref(c, "dpo"),
        (spark, c) -> PrefTrainJob.run(spark, c, "dpo")));
  }
}
