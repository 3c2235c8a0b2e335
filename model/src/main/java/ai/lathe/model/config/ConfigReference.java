package ai.lathe.model.config;

import ai.lathe.model.train.SftTrainer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every job's and config-driven command's keys: the one reference that the key check, the
 * README's "Configuration reference" section and the tests read. A key the code reads must be
 * listed here (a test runs every job's settings parsing on conf/*.yaml and compares).
 */
public final class ConfigReference {
  private ConfigReference() {}

  /** train.* defaults of the distributed SFT job (totalSteps is computed from the data). */
  public static final SftTrainer.Options TRAIN_SFT = new SftTrainer.Options(4, 1, 512, 2e-4, 0, 1, 0.0, 0.0, 1.0, 42);
  /** train.* defaults of the preference jobs: as SFT with a smaller learning rate. */
  public static final SftTrainer.Options TRAIN_PREF = new SftTrainer.Options(4, 1, 512, 5e-5, 0, 1, 0.0, 0.0, 1.0, 42);
  /** train.* defaults of sft-local (warmup_steps: max(1, steps / 20), set by the command). */
  public static final SftTrainer.Options TRAIN_LOCAL = new SftTrainer.Options(4, 1, 256, 2e-4, 1, 1, 0.0, 0.0, 1.0, 42);

  private static List<KeySpec> quant() {
    return List.of(
        KeySpec.of("quantize", "none", "nf4: hold the base's seven projections in bitsandbytes' NF4 (QLoRA)").oneOf("none", "nf4"),
        KeySpec.of("double_quant", false, "with nf4: quantise the block scales too (8-bit, blocks of 256)"));
  }

  private static List<KeySpec> engine() {
    return List.of(KeySpec.of("engine.kernels", "auto", "auto (CUDA backend: nd4j, CPU: java) | java (JVM loops, the "
        + "fastest on CPUs; refused on CUDA) | nd4j (the whole step as ND4J ops on the arrays: row kernels, head "
        + "loss, dropout, AdamW)").oneOf("auto", "java", "nd4j"));
  }

  private static List<KeySpec> lora(String when) {
    return List.of(
        KeySpec.of("lora.r", 8, "LoRA rank" + when),
        KeySpec.of("lora.alpha", 16.0, "lora_alpha: scaling alpha / r (alpha / sqrt(r) with rsLoRA)"),
        KeySpec.of("lora.target_modules", List.of("q_proj", "k_proj", "v_proj", "o_proj"),
            "module names (PEFT's target_modules; all-linear = the seven projections)"),
        KeySpec.of("lora.dropout", 0.0, "dropout on the adapter input"),
        KeySpec.of("lora.use_rslora", false, "rank-stabilised scaling alpha / sqrt(r)"),
        KeySpec.of("lora.use_dora", false, "DoRA (PEFT use_dora): magnitude + direction"),
        KeySpec.map("lora.rank_pattern", "per-module ranks, PEFT keys (module-path suffix → r); keys not checked"),
        KeySpec.map("lora.alpha_pattern", "per-module alphas, PEFT keys; keys not checked"),
        KeySpec.of("lora.type", "lora", "lora | adalora: AdaLoRA allocates ranks by importance (PEFT ADALORA; "
            + "uses lora.alpha, target_modules, dropout and the keys below; r and rank_pattern unused)").oneOf("lora", "adalora"),
        KeySpec.of("lora.init_r", 12, "AdaLoRA: initial rank of every module"),
        KeySpec.of("lora.target_r", 8, "AdaLoRA: average rank per module at the end (total budget target_r x modules)"),
        KeySpec.of("lora.tinit", 0, "AdaLoRA: warm-up steps before the budget falls"),
        KeySpec.of("lora.tfinal", 0, "AdaLoRA: final steps with the final ranks"),
        KeySpec.of("lora.delta_t", 1, "AdaLoRA: steps between rank allocations (PEFT deltaT)"),
        KeySpec.of("lora.beta1", 0.85, "AdaLoRA: EMA of the sensitivity |w*grad|"),
        KeySpec.of("lora.beta2", 0.85, "AdaLoRA: EMA of its uncertainty"),
        KeySpec.of("lora.orth_reg_weight", 0.5, "AdaLoRA: weight of the orthogonality penalty on A and B"),
        KeySpec.of("lora.total_step", 0, "AdaLoRA: steps of the budget schedule; 0 = the run's step count"),
        KeySpec.of("lora.export_lora", false, "AdaLoRA: also write the equivalent plain LoRA folder in <output>/lora"));
  }

  private static List<KeySpec> train(SftTrainer.Options d, String unit, boolean local) {
    List<KeySpec> k = new ArrayList<>(List.of(
        KeySpec.of("train.seq_len", d.seqLen(), "tokens per sequence (longer examples are truncated, counted)"),
        KeySpec.of("train.batch_size", d.batchSize(), "examples per micro-batch" + unit),
        KeySpec.of("train.grad_accum", d.gradAccum(), "micro-batches per optimizer step"),
        KeySpec.of("train.epochs", 1, "passes over the data" + (local ? "" : " (over the smallest partition's shard)")),
        KeySpec.of("train.max_steps", 0, "optimizer steps" + (local ? "" : " per partition") + "; 0 = epochs"),
        KeySpec.of("train.lr", d.lr(), "peak AdamW learning rate"),
        local ? new KeySpec("train.warmup_steps", "(max(1, steps / 20))", "linear warmup steps", KeySpec.Kind.VALUE)
            : KeySpec.of("train.warmup_steps", d.warmupSteps(), "linear warmup steps"),
        KeySpec.of("train.min_lr_ratio", d.minLrRatio(), "cosine decay floor as a fraction of lr"),
        KeySpec.of("train.weight_decay", d.weightDecay(), "AdamW weight decay"),
        KeySpec.of("train.max_grad_norm", d.maxGradNorm(), "gradient clipping by global norm"),
        KeySpec.of("train.seed", d.seed(), "adapter initialisation, dropout and data order"),
        KeySpec.of("train.adam_beta1", d.adamBeta1(), "AdamW's first-moment decay (TRL/PEFT adam_beta1)"),
        KeySpec.of("train.adam_beta2", d.adamBeta2(), "AdamW's second-moment decay (adam_beta2)"),
        KeySpec.of("train.adam_epsilon", d.adamEpsilon(), "AdamW's epsilon (adam_epsilon)"),
        KeySpec.of("train.mode", "lora", "lora (adapters, lora.*) | full (every weight; output is a Hugging Face model folder)").oneOf("lora", "full"),
        KeySpec.of("train.freeze", List.of(), "full mode: tensors kept frozen, regexes found in HF names (e.g. embed_tokens); each must match")));
    if (local) {
      k.add(KeySpec.of("train.gradient_checkpointing", false, "keep only each layer's input in forward and "
          + "recompute the layer in backward (identical gradients; about one more forward per step, far less memory)"));
    }
    return k;
  }

  private static List<KeySpec> rounds() {
    List<KeySpec> k = new ArrayList<>();
    k.add(KeySpec.of("distributed.partitions", 0, "data shards = parallel tasks, one task slot each (barrier rounds); 0 = the task slots available"));
    k.add(KeySpec.of("distributed.averaging_frequency", 8, "local steps between averages (one round)"));
    k.add(KeySpec.of("distributed.average_optimizer_state", true, "average AdamW moments too (else reset each round)"));
    k.add(KeySpec.of("distributed.outer_optimizer", "none", "nesterov: DiLoCo outer step").oneOf("none", "nesterov"));
    k.add(KeySpec.of("distributed.outer_lr", 0.7, "outer Nesterov learning rate"));
    k.add(KeySpec.of("distributed.outer_momentum", 0.9, "outer Nesterov momentum"));
    k.add(KeySpec.of("distributed.checkpoint_every", 1, "rounds between checkpoints"));
    k.add(KeySpec.of("distributed.eval_every", 1, "rounds between validation losses"));
    k.add(KeySpec.of("distributed.executor_wait_s", 120.0, "seconds to wait for the promised executors (one task slot per"
        + " partition) before the first round"));
    return k;
  }

  private static List<KeySpec> io(String data) {
    return List.of(
        KeySpec.required("model", "base model: Hugging Face folder, any Hadoop path; loaded once per executor"),
        KeySpec.required("data", data),
        KeySpec.of("data_langs", List.of(), "keep these languages only (empty: all)"),
        KeySpec.required("output", "PEFT adapter folder (+ lathe-run.json, metrics.jsonl, plots), written atomically"),
        new KeySpec("checkpoint_dir", "(output + .checkpoints)", "checkpoints; a rerun resumes from the newest",
            KeySpec.Kind.VALUE));
  }

  private static JobKeys job(String name, String summary, Map<String, String> aliases, List<List<KeySpec>> parts) {
    List<KeySpec> all = new ArrayList<>();
    parts.forEach(all::addAll);
    if (!name.equals("pipeline")) {
      all.add(KeySpec.of("overwrite", false, "replace an existing output that is not a committed Lathe output of this kind"));
    }
    if (name.equals("prep")) {
      all.add(KeySpec.of("allow_empty", false, "commit an output with no rows (else: an error, nothing replaced)"));
    }
    return new JobKeys(name, summary, all, aliases);
  }

  public static final JobKeys PREP = job("prep", "`conf/prep.yaml`: instruction, preference or KTO data → tokenised Parquet.",
      Map.of(), List.of(List.of(
          KeySpec.required("input", "a path, glob or list; local, hdfs://, s3a://"),
          KeySpec.of("input_type", "jsonl", "arrow: IPC stream or file; hf-datasets: a save_to_disk folder")
              .oneOf("jsonl", "parquet", "arrow", "hf-datasets"),
          KeySpec.of("format", "alpaca", "the input rows' form").oneOf("alpaca", "messages", "prompt-completion", "preference", "kto"),
          KeySpec.map("fields", "renames of input fields, e.g. {instruction: question}; keys not checked"),
          KeySpec.of("lang_field", "lang", "the field holding the language"),
          KeySpec.required("tokenizer", "a model folder with tokenizer.json, or the file itself"),
          KeySpec.of("template", "(model if tokenizer_config.json has a chat_template, else llama2)",
              "model: the tokenizer's own Jinja chat_template").oneOf(ai.lathe.model.text.ChatTemplate.NAMES),
          KeySpec.of("max_length", 1024, "tokens per row"),
          KeySpec.of("over_length", "truncate", "rows over max_length (counted either way)").oneOf("truncate", "drop"),
          KeySpec.of("max_chars", 1_000_000, "longer rows are rejected before parsing"),
          KeySpec.of("val_fraction", 0.1, "validation share, by a hash of the content id"),
          KeySpec.of("max_reject_fraction", 0.5, "fail (nothing written) when more rows are rejected"),
          KeySpec.of("partitions", 1, "files per (lang, split)"),
          KeySpec.of("packing", false, "SFT: lay examples end to end into rows of max_length"),
          KeySpec.of("stage", "all", "all | clean (validated rows) | tokenize (input = a clean output)").oneOf("all", "clean", "tokenize"),
          new KeySpec("kind", "(from format)", "what the output holds", KeySpec.Kind.VALUE).oneOf("sft", "preference", "kto"),
          KeySpec.of("pair_seed", 0, "seed of pairs built from instruction data"),
          KeySpec.of("pair_rejected", "other", "pairs from instruction data: other (another row's answer) | shuffled")
              .oneOf("other", "shuffled"),
          KeySpec.of("near_dedup.enabled", false, "MinHash LSH near-duplicate removal (after exact dedup)"),
          KeySpec.of("near_dedup.threshold", 0.8, "estimated Jaccard similarity of character 5-grams"),
          KeySpec.of("near_dedup.num_perm", 128, "MinHash permutations"),
          KeySpec.of("replay.input", List.of(), "general data mixed into train against forgetting"),
          KeySpec.of("replay.fraction", 0.0, "replay rows ≈ fraction × train rows"),
          KeySpec.required("output", "output folder (data/, rejects/, manifest.json), written atomically"))));

  public static final JobKeys SFT = job("sft", "`conf/sft.yaml`: distributed LoRA SFT by parameter averaging.", Map.of(),
      List.of(io("output of lathe prep (manifest.json + data/)"), quant(), engine(), lora(""),
          train(TRAIN_SFT, " per partition", false), rounds()));

  private static List<KeySpec> pref(boolean kto) {
    List<KeySpec> k = new ArrayList<>(List.of(
        KeySpec.of("adapter", "", "start from this PEFT adapter (its config replaces lora.*); unset = fresh LoRA; "
            + "an error with train.mode full"),
        KeySpec.of("reference.adapter", "", "reference = base + this adapter; unset = the base (LoRA: adapters "
            + "disabled; train.mode full: the frozen starting weights)"),
        KeySpec.of("reference.on_the_fly", false, "compute missing reference columns at the start of the job"),
        KeySpec.of("reference.batch_size", 8, "rows per reference forward pass (on the fly)"),
        kto ? KeySpec.of("loss.type", "kto", "the KTO loss").oneOf("kto")
            : KeySpec.of("loss.type", "sigmoid", "sigmoid (label_smoothing = cDPO) | ipo | hinge | robust")
                .oneOf("sigmoid", "ipo", "hinge", "robust"),
        KeySpec.of("loss.beta", 0.1, "the loss's beta")));
    if (kto) {
      k.add(KeySpec.of("loss.desirable_weight", 1.0, "weight of desirable examples"));
      k.add(KeySpec.of("loss.undesirable_weight", 1.0, "weight of undesirable examples"));
    } else {
      k.add(KeySpec.of("loss.label_smoothing", 0.0, "cDPO / robust label smoothing"));
    }
    return k;
  }

  public static final JobKeys DPO = job("dpo", "`conf/dpo.yaml`: DPO family by parameter averaging.", Map.of(),
      List.of(io("prep kind=preference, then ref-logps"), pref(false), quant(), engine(), lora(" (used only without adapter)"),
          train(TRAIN_PREF, " (pairs) per partition", false), rounds()));

  public static final JobKeys KTO = job("kto", "`conf/kto.yaml`: KTO on labelled completions by parameter averaging.",
      Map.of(), List.of(io("prep kind=kto, then ref-logps"), pref(true), quant(), engine(), lora(" (used only without adapter)"),
          train(TRAIN_PREF, " per partition", false), rounds()));

  public static final JobKeys REF_LOGPS = job("ref-logps",
      "`conf/ref-logps.yaml`: reference log-probs added to prepared preference or KTO data.",
      Map.of("reference_adapter", "reference.adapter"), List.of(List.of(
          KeySpec.required("model", "base model folder, any Hadoop path"),
          KeySpec.required("data", "prep output of kind preference or kto"),
          KeySpec.required("output", "the same rows plus the reference columns (may equal data)"),
          KeySpec.of("reference.adapter", "", "unset = the base with adapters disabled"),
          KeySpec.of("batch_size", 8, "rows per forward pass")), quant()));

  private static List<KeySpec> merge() {
    return List.of(
        KeySpec.of("method", "ties", "the merge method (mergekit's names)")
            .oneOf("linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "magnitude_prune"),
        KeySpec.required("base_model", "the base model folder the adapters were trained on"),
        KeySpec.of("quantize", "none", "nf4: the adapters were trained on an NF4 base (scored and merged on its round trip)")
            .oneOf("none", "nf4"),
        KeySpec.of("double_quant", false, "with nf4: the base's block scales were double-quantised"),
        KeySpec.of("parameters.density", 1.0, "share of each update kept (TIES trim, DARE keep probability)"),
        new KeySpec("parameters.normalize", "(per method)", "divide by the summed weights", KeySpec.Kind.VALUE),
        KeySpec.of("parameters.sign", "total", "TIES sign election: total (sum) | frequency (count)").oneOf("total", "frequency"),
        KeySpec.of("parameters.lambda", 1.0, "scale of the merged update"),
        KeySpec.of("parameters.seed", 0, "DARE drop mask seed"),
        KeySpec.required("adapters", "the adapters: paths or {path, weight, density}"),
        KeySpec.required("adapters[].path", "an adapter folder"),
        KeySpec.of("adapters[].weight", 1.0, "its weight"),
        new KeySpec("adapters[].density", "(parameters.density)", "its density", KeySpec.Kind.VALUE),
        KeySpec.of("output.kind", "adapter", "adapter (re-factored to rank output.rank) | model (merged into the base)")
            .oneOf("adapter", "model"),
        KeySpec.of("output.rank", 16, "rank of the re-factored adapter"),
        KeySpec.required("output.path", "output folder, written atomically"),
        KeySpec.of("output.dtype", "F32", "dtype of the written tensors").oneOf("F32", "BF16"));
  }

  private static final Map<String, String> MERGE_ALIASES = aliases("base_quantize", "quantize",
      "base_double_quant", "double_quant");

  public static final JobKeys MERGE = job("merge", "`conf/merge.yaml`: adapter merging (mergekit's form).",
      MERGE_ALIASES, List.of(merge()));

  public static final JobKeys MERGE_JOB = job("merge-job",
      "`conf/merge.yaml` plus the gate: the nightly merge, published only if the gate passes (exit 3 otherwise).",
      MERGE_ALIASES, List.of(merge(), List.of(
          KeySpec.of("parallel_modules", true, "adapter output: spread modules over the executors"),
          KeySpec.required("gate.data", "prepared SFT data whose validation split gates the merge (gate set)"),
          KeySpec.of("gate.max_val_loss", Double.POSITIVE_INFINITY, "refuse the merge above this loss in any language"),
          KeySpec.of("gate.seq_len", 512, "tokens per validation sequence"),
          KeySpec.of("gate.langs", List.of(), "languages to gate on (empty: all present)"))));

  public static final JobKeys SFT_LOCAL = job("sft-local",
      "`conf/sft-local.yaml`: LoRA SFT on one machine straight from JSON lines (keys as in prep and sft).",
      aliases("data.format", "format", "data.template", "template", "data.langs", "data_langs",
          "data.val_fraction", "val_fraction", "data.max_rows", "max_rows", "data.fields", "fields",
          "data.path", "data", "train.eval_every", "distributed.eval_every"),
      List.of(List.of(
          KeySpec.required("model", "Hugging Face model folder (config.json, safetensors, tokenizer.json)"),
          KeySpec.required("data", "JSON lines of instruction data"),
          KeySpec.required("output", "PEFT adapter folder (train.mode full: a Hugging Face model folder), written atomically"),
          KeySpec.of("format", "alpaca", "the input rows' form").oneOf("alpaca", "messages", "prompt-completion"),
          KeySpec.map("fields", "renames of input fields; keys not checked"),
          KeySpec.of("template", "(model if tokenizer_config.json has a chat_template, else llama2)",
              "model: the tokenizer's own Jinja chat_template").oneOf(ai.lathe.model.text.ChatTemplate.NAMES),
          KeySpec.of("data_langs", List.of(), "keep rows whose lang is listed (empty: all)"),
          KeySpec.of("val_fraction", 0.1, "validation share, by a hash of the content id (as prep)"),
          KeySpec.of("max_rows", 0, "rows read; 0 = all")), quant(), engine(), lora(""), train(TRAIN_LOCAL, "", true),
          List.of(KeySpec.of("train.threads", 0, "threads; 0 = all cores"),
              KeySpec.of("distributed.eval_every", 0, "steps between validation losses (one step is one round here); 0 = at the end"))));

  private static List<KeySpec> stage(String name, String config, String what) {
    return List.of(KeySpec.of(name + ".config", config, what + ": its config file"),
        KeySpec.map(name + ".set", what + ": overrides (checked against that job's keys)"));
  }

  public static final JobKeys PIPELINE = job("pipeline", "`conf/pipeline.yaml`: the whole pipeline on the sample data.",
      Map.of(), List.of(List.of(
          KeySpec.of("work_dir", "work", "where every output goes"),
          new KeySpec("model.path", "(work_dir/model)", "base model; when missing, a demo model is created and trained there",
              KeySpec.Kind.VALUE),
          KeySpec.of("model.tokenizer", "data/tokenizer/llama2/tokenizer.json", "demo model: tokenizer"),
          KeySpec.of("model.dim", 256, "demo model: hidden size"),
          KeySpec.of("model.layers", 4, "demo model: layers"),
          KeySpec.of("model.heads", 8, "demo model: attention heads"),
          KeySpec.of("model.kv_heads", 4, "demo model: key/value heads"),
          KeySpec.of("model.ffn", 688, "demo model: MLP size"),
          KeySpec.of("model.seed", 0, "demo model: weight seed")),
          stage("base", "conf/base.yaml", "demo base training from scratch (sft-local, train.mode full)"),
          stage("prep", "conf/prep.yaml", "prep"), stage("sft", "conf/sft.yaml", "sft"),
          stage("pairs", "conf/prep.yaml", "preference pairs (prep)"),
          stage("ref_logps", "conf/ref-logps.yaml", "ref-logps"), stage("dpo", "conf/dpo.yaml", "dpo"),
          List.of(KeySpec.of("merge.config", "conf/merge.yaml", "merge-job: its config file"),
              KeySpec.of("merge.langs", List.of("en", "de"), "one SFT adapter per language, then merged"),
              KeySpec.map("merge.sft_set", "per-language sft overrides (checked against sft's keys)"),
              KeySpec.of("merge.gate_slack", 0.05, "publish when every language's loss <= worst single-language loss + slack")),
          stage("eval", "conf/eval.yaml", "eval (DPO vs SFT, both rounds)"),
          stage("feedback", "conf/feedback.yaml", "feedback pairs from the first eval"),
          List.of(KeySpec.of("eval.enabled", true, "run eval -> feedback -> ref-logps -> dpo round 2 -> eval after the merge"),
              KeySpec.map("feedback.dpo_set", "second DPO round: overrides on top of dpo.set (checked against dpo's keys)"))));

  public static final JobKeys EVAL = job("eval", "`conf/eval.yaml`: candidate vs baseline answers judged pairwise by a"
      + " judge model (both orders), win rates, reference-free losses, gate.", Map.of(), List.of(EvalKeys.eval()));

  public static final JobKeys FEEDBACK = job("feedback", "`conf/feedback.yaml`: judged items → preference pairs (chosen ="
      + " the winner) for the next DPO round, lost prompts → an instruction drop.", Map.of(),
      List.of(EvalKeys.feedback()));

  /** Every job with a config, by command name. */
  public static final Map<String, JobKeys> JOBS = byName(PREP, SFT, DPO, KTO, REF_LOGPS, MERGE, MERGE_JOB, SFT_LOCAL,
      PIPELINE, EVAL, FEEDBACK);

  public static JobKeys of(String job) {
    JobKeys k = JOBS.get(job);
    if (k == null) {
      throw new IllegalArgumentException("no configuration reference for job '" + job + "'");
    }
    return k;
  }

  /** The README section: every job's keys with defaults and descriptions. */
  public static String markdown() {
    StringBuilder sb = new StringBuilder("### Configuration reference\n\n");
    sb.append("Generated from `ai.lathe.model.config.ConfigReference` (a test keeps this section equal to it). "
        + "An unknown key in a config file, a `--set` or a `--key` shortcut fails the job before any work "
        + "(exit 2) naming the key, where it came from and the nearest known key; keys inside maps marked "
        + "\"keys not checked\" are free. A key listed with \"one of\" takes exactly one of those values "
        + "(case-sensitive); any other value fails the same way, in one line naming the key, the value, where it "
        + "came from, the allowed values and the nearest. An empty value (`--set key=`, or `key:` with nothing "
        + "after it in the file) resets the key to its default; a required key cannot be reset (exit 2); "
        + "`--set 'key=\"\"'` sets the empty string.\n");
    for (JobKeys j : JOBS.values()) {
      sb.append("\n").append(j.markdown());
    }
    return sb.toString();
  }

  private static final String HEADING = "### Configuration reference\n";

  /** The README's reference section: from its heading to the next ## or ### heading, trailing blank lines dropped. */
  public static String readmeSection(String readme) {
    int start = readme.indexOf(HEADING);
    if (start < 0) {
      return "";
    }
    int end = nextHeading(readme, start + HEADING.length());
    return readme.substring(start, end).stripTrailing() + "\n";
  }

  private static int nextHeading(String text, int from) {
    int a = text.indexOf("\n## ", from);
    int b = text.indexOf("\n### ", from);
    int end = a < 0 ? b : b < 0 ? a : Math.min(a, b);
    return end < 0 ? text.length() : end + 1;
  }

  /** Rewrites the reference section of the README at args[0] (default README.md) from this class. */
  public static void main(String[] args) throws java.io.IOException {
    java.nio.file.Path readme = java.nio.file.Path.of(args.length > 0 ? args[0] : "README.md");
    String text = java.nio.file.Files.readString(readme);
    int start = text.indexOf(HEADING);
    if (start < 0) {
      throw new IllegalStateException(readme + ": no '" + HEADING.strip() + "' heading to replace");
    }
    int end = nextHeading(text, start + HEADING.length());
    String tail = text.substring(end);
    java.nio.file.Files.writeString(readme, text.substring(0, start) + markdown() + (tail.isEmpty() ? "" : "\n" + tail));
  }

  private static Map<String, String> aliases(String... oldNew) {
    Map<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < oldNew.length; i += 2) {
      m.put(oldNew[i], oldNew[i + 1]);
    }
    return m;
  }

  private static Map<String, JobKeys> byName(JobKeys... jobs) {
    Map<String, JobKeys> m = new LinkedHashMap<>();
    for (JobKeys j : jobs) {
      m.put(j.job(), j);
    }
    return java.util.Collections.unmodifiableMap(m);
  }
}
