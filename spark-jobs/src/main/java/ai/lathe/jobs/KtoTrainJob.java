package ai.lathe.jobs;

import ai.lathe.prep.JobMain;

/**
 * KTO on prepared KTO Parquet (labelled completions) with reference log-probs.
 * {@code spark-submit --class ai.lathe.jobs.KtoTrainJob lathe-jobs.jar --config kto.yaml}.
 */
public final class KtoTrainJob {
  public static final String USAGE = """
      usage: lathe kto --config conf/kto.yaml [--set key=value ...]
        KTO (loss.desirable_weight, loss.undesirable_weight, in-batch KL) on prepared KTO data that
        has ref_logp (lathe ref-logps), by parameter averaging; starts from `adapter` or a fresh LoRA.
        Writes a PEFT adapter with lathe-run.json, metrics.jsonl (TRL's rewards/* and logps/* names), loss.png and rewards.png.
        With train.mode full it trains every weight against the frozen base and writes a Hugging Face model folder.""";

  private KtoTrainJob() {}

  public static void main(String[] argv) {
    System.exit(JobMain.run("kto", argv, USAGE, (c, h) -> JobOutputs.pref(c, "kto"),
        (spark, c) -> PrefTrainJob.run(spark, c, "kto")));
  }
}
