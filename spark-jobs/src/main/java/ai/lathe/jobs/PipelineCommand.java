package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.config.JobKeys;
import ai.lathe.prep.PrepJob;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * {@code lathe pipeline}: the main job on the bundled sample data, on embedded Spark. Creates the
 * demo base model when missing (random weights with the bundled Llama-2 tokenizer, then trained
 * from scratch on the bundled text with every weight trainable: DemoBase), prepares the
 * data (prep), trains the multilingual SFT adapter by parameter averaging (sft), continues into
 * DPO on pairs built from the same instructions (prep kind=preference, ref-logps, dpo), trains one
 * adapter per language and TIES-merges them, publishing the merge only if each language's
 * validation loss stays within the gate (merge-job).
 */
public final class PipelineCommand {
  public static final String USAGE = """
      usage: lathe pipeline [--config conf/pipeline.yaml] [--set key=value ...]
        Runs the whole pipeline on the bundled sample data on embedded Spark: demo base model
        (trained from scratch on the bundled text, full-parameter), prep (validated, tokenised
        Parquet), distributed SFT adapter, preference pairs, reference log-probs, DPO from the SFT
        adapter, per-language adapters and their gated TIES merge, then judge eval (DPO vs SFT),
        feedback pairs from its verdicts, a second DPO round on them and eval again.
        Outputs go under work_dir (--set work_dir=DIR).""";

  private PipelineCommand() {}

  /**
   * Everything the pipeline will run, parsed and checked before Spark starts: the pipeline's own
   * keys and every stage's config (its file, the pipeline's paths and its stage.set overrides)
   * against that job's keys, so a typo anywhere fails first (exit 2).
   */
  record Plan(Path work, Path model, List<String> init, Config base, Config prep, Config sft, Config pairs, Config refLogps,
      Config dpo, Path prepared, Path adapter, Path dpoOut, List<String> langs, List<Config> perLang,
      String mergeConfig, double slack) {}

  static Plan plan(Config c) throws Exception {
    c.validate(ConfigReference.PIPELINE);
    Path work = Path.of(c.str("work_dir", "work"));
    Path model = Path.of(c.str("model.path", work.resolve("model").toString()));
    // the demo base: random weights in model-init, trained from scratch (base.*) into model
    Path initDir = work.resolve("model-init");
    Config base = stage(c, "base", "conf/base.yaml", ConfigReference.SFT_LOCAL,
        List.of("model=" + initDir, "output=" + model));
    List<String> init = new ArrayList<>(List.of("--output", initDir.toString(),
        "--tokenizer", c.str("model.tokenizer", "data/tokenizer/llama2/tokenizer.json"),
        "--dim", c.str("model.dim", "256"), "--layers", c.str("model.layers", "4"),
        "--heads", c.str("model.heads", "8"), "--kv-heads", c.str("model.kv_heads", "4"),
        "--ffn", c.str("model.ffn", "688"), "--seed", c.str("model.seed", "0")));
    Path prepared = work.resolve("prepared/sft");
    Path adapter = work.resolve("adapters/sft");
    Config prep = stage(c, "prep", "conf/prep.yaml", ConfigReference.PREP,
        List.of("tokenizer=" + model, "output=" + prepared));
    Config sft = stage(c, "sft", "conf/sft.yaml", ConfigReference.SFT,
        List.of("model=" + model, "data=" + prepared, "output=" + adapter));
    Path pairsDir = work.resolve("prepared/pairs");
    Path pairsRef = work.resolve("prepared/pairs-ref");
    Path dpoOut = work.resolve("adapters/dpo");
    Config pairs = stage(c, "pairs", "conf/prep.yaml", ConfigReference.PREP, List.of("tokenizer=" + model,
        "output=" + pairsDir, "kind=preference"));
    Config refLogps = stage(c, "ref_logps", "conf/ref-logps.yaml", ConfigReference.REF_LOGPS, List.of("model=" + model,
        "data=" + pairsDir, "output=" + pairsRef, "reference.adapter=" + adapter));
    Config dpo = stage(c, "dpo", "conf/dpo.yaml", ConfigReference.DPO, List.of("model=" + model, "data=" + pairsRef,
        "output=" + dpoOut, "adapter=" + adapter, "reference.adapter=" + adapter));
    List<String> langs = c.strings("merge.langs", List.of("en", "de"));
    List<Config> perLang = new ArrayList<>();
    for (String lang : langs) {
      Config one = stage(c, "sft", "conf/sft.yaml", null, List.of("model=" + model, "data=" + prepared,
          "output=" + work.resolve("adapters/" + lang), "data_langs=[" + lang + "]"));
      if (c.node("merge.sft_set") != null) {
        c.node("merge.sft_set").fields().forEachRemaining(e -> one.set(e.getKey(), e.getValue(),
            c.source() + " merge.sft_set." + e.getKey()));
      }
      perLang.add(one.validate(ConfigReference.SFT));
    }
    String mergeConfig = c.str("merge.config", "conf/merge.yaml");
    mergeConfig(mergeConfig, model, work, prepared, langs, "", Double.POSITIVE_INFINITY); // checked now, built later
    return new Plan(work, model, init, base, prep, sft, pairs, refLogps, dpo, prepared, adapter, dpoOut, langs, perLang,
        mergeConfig, c.number("merge.gate_slack", 0.05));
  }

  /** The merge-job config: the file plus the per-language adapters and the gate, checked against merge-job's keys. */
  static Config mergeConfig(String file, Path model, Path work, Path prepared, List<String> langs, String adapters,
      double bound) throws Exception {
    List<String> sets = new ArrayList<>(List.of("base_model=" + model, "output.path=" + work.resolve("adapters/merged"),
        "gate.data=" + prepared, "gate.langs=" + langs, "gate.max_val_loss=" + bound));
    if (!adapters.isEmpty()) {
      sets.add(1, "adapters=" + adapters);
    }
    return Config.load(Path.of(file), sets).validate(ConfigReference.MERGE_JOB);
  }

  public static int run(String[] argv) throws Exception {
    Args a = new Args("pipeline", argv, Set.of()).allow(Set.of("config", "set"));
    Config pc = Config.load(a.has("config") ? a.path("config") : Path.of("conf/pipeline.yaml"), a.all("set"));
    Plan p = plan(pc);
    PipelineEval.Plan evalPlan = PipelineEval.plan(pc, p);
    Path work = p.work();
    Path model = p.model();
    if (!Files.exists(model.resolve("config.json"))) {
      DemoBase.create(p.init(), p.base(), p.prep());
    } else if (model.equals(Path.of(p.base().need("output")))) {
      DemoBase.checkKept(p.init(), p.base(), p.prep()); // a rerun keeps only a base of the same settings
    }
    Path prepared = p.prepared();
    Path adapter = p.adapter();
    Path dpoOut = p.dpoOut();
    Config prep = p.prep();
    Config sft = p.sft();
    Config pairs = p.pairs();
    Config refLogps = p.refLogps();
    Config dpo = p.dpo();
    SparkSession spark = SparkSession.builder().appName("lathe-pipeline").getOrCreate();
    org.apache.hadoop.conf.Configuration hconf = spark.sparkContext().hadoopConfiguration();
    try {
      System.out.println("== pipeline: prep");
      locked(spark, PrepJob.outputs(prep, hconf), () -> PrepJob.run(spark, prep));
      System.out.println("== pipeline: sft (parameter averaging on " + spark.sparkContext().master() + ")");
      SftTrainJob.Result r = locked(spark, JobOutputs.sft(sft, hconf), () -> SftTrainJob.run(spark, sft));
      // a rerun that finds every round checkpointed runs none: report from what the job wrote
      var first = firstOf(r.metrics());
      var last = lastOf(r.metrics());
      // preference pairs from the same instructions, reference log-probs under the SFT adapter, DPO from it
      System.out.println("== pipeline: preference pairs (prep kind=preference)");
      locked(spark, PrepJob.outputs(pairs, hconf), () -> PrepJob.run(spark, pairs));
      System.out.println("== pipeline: reference log-probs (ref-logps, reference = base + SFT adapter)");
      locked(spark, JobOutputs.refLogps(refLogps), () -> RefLogpsJob.run(spark, refLogps));
      System.out.println("== pipeline: dpo (from the SFT adapter)");
      var dpoRun = locked(spark, JobOutputs.pref(dpo, "dpo"), () -> PrefTrainJob.run(spark, dpo, "dpo"));
      var dpoFirst = firstOf(dpoRun.metrics());
      var dpoLast = lastOf(dpoRun.metrics());
      // per-language adapters, then the nightly TIES merge of them, gated on each language's loss
      List<String> langs = p.langs();
      StringBuilder adapters = new StringBuilder("[");
      double worst = 0;
      for (int i = 0; i < langs.size(); i++) {
        String lang = langs.get(i);
        System.out.println("== pipeline: sft for '" + lang + "'");
        Config one = p.perLang().get(i);
        SftTrainJob.Result lr = locked(spark, JobOutputs.sft(one, hconf), () -> SftTrainJob.run(spark, one));
        worst = Math.max(worst, lastOf(lr.metrics()).path("val_loss").asDouble(Double.NaN));
        adapters.append(adapters.length() > 1 ? ", " : "").append("{path: ").append(work.resolve("adapters/" + lang))
            .append(", weight: 1.0}");
      }
      adapters.append("]");
      System.out.println("== pipeline: TIES merge of " + langs);
      double slack = p.slack();
      Config merge = mergeConfig(p.mergeConfig(), model, work, prepared, langs, adapters.toString(), worst + slack);
      var losses = locked(spark, JobOutputs.mergeJob(merge), () -> MergeJob.run(spark, merge));
      String evalLines = PipelineEval.run(spark, evalPlan); // eval -> feedback -> ref-logps -> dpo round 2 -> eval
      System.out.println("== pipeline: done");
      System.out.println(DemoBase.summary(model));
      System.out.printf("base model:    %s%nprepared data: %s%nSFT adapter:   %s (train loss %.4f -> %.4f, "
          + "validation loss %.4f)%nDPO adapter:   %s (held-out rewards/accuracies %.3f -> %.3f, margins %.3f -> %.3f)"
          + "%nper-language:  %s%nmerged (TIES): %s (validation loss per language %s, gate %.4f)%n",
          model, prepared, adapter, first.path("train_loss").asDouble(Double.NaN), last.path("train_loss").asDouble(Double.NaN),
          last.path("val_loss").asDouble(Double.NaN), dpoOut, dpoFirst.path("eval_rewards/accuracies").asDouble(Double.NaN),
          dpoLast.path("eval_rewards/accuracies").asDouble(Double.NaN), dpoFirst.path("eval_rewards/margins")
          .asDouble(Double.NaN), dpoLast.path("eval_rewards/margins").asDouble(Double.NaN), langs, work.resolve("adapters/merged"), losses, worst + slack);
      System.out.println(evalLines);
    } finally {
      spark.stop();
    }
    return 0;
  }

  /** Runs one stage holding its output's lock (checked like the stage's own command). */
  static <T> T locked(SparkSession spark, ai.lathe.model.io.OutputGuard.Spec spec, java.util.concurrent.Callable<T> stage)
      throws Exception {
    try (var lease = ai.lathe.prep.HadoopStore.acquire(spec, spark.sparkContext().hadoopConfiguration())) {
      return stage.call();
    } finally {
      StageMemory.release(); // this stage's engines and their off-heap buffers do not outlive it
    }
  }

  static com.fasterxml.jackson.databind.node.ObjectNode firstOf(List<com.fasterxml.jackson.databind.node.ObjectNode> m) {
    return m.isEmpty() ? new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode() : m.get(0);
  }

  static com.fasterxml.jackson.databind.node.ObjectNode lastOf(List<com.fasterxml.jackson.databind.node.ObjectNode> m) {
    return m.isEmpty() ? new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode() : m.get(m.size() - 1);
  }

  /**
   * A stage's config file with the pipeline's paths and its own overrides (pipeline keys
   * stage.set.*), checked against the job's keys (keys null: the caller checks).
   */
  static Config stage(Config c, String name, String dflt, JobKeys keys, List<String> paths) throws Exception {
    Config s = Config.load(Path.of(c.str(name + ".config", dflt)), paths);
    if (c.node(name + ".set") != null) {
      for (var it = c.node(name + ".set").fields(); it.hasNext(); ) {
        var e = it.next();
        s.set(e.getKey(), e.getValue(), c.source() + " " + name + ".set." + e.getKey()); // lists stay lists
      }
    }
    return keys == null ? s : s.validate(keys);
  }
}
