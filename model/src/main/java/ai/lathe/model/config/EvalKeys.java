package ai.lathe.model.config;

import ai.lathe.model.eval.JudgePrompt;
import java.util.List;

/** The keys of the eval and feedback jobs (listed in ConfigReference.JOBS). */
final class EvalKeys {
  private EvalKeys() {}

  static List<KeySpec> eval() {
    return List.of(
        KeySpec.required("model", "base model of candidate and baseline: Hugging Face folder, any Hadoop path; loaded once per executor"),
        KeySpec.of("candidate.adapter", "", "the candidate = base + this PEFT adapter (unset: the base alone)"),
        KeySpec.of("baseline.kind", "reference", "reference (the data's reference answers) | base (adapters disabled) | adapter")
            .oneOf("reference", "base", "adapter"),
        KeySpec.of("baseline.adapter", "", "with baseline.kind adapter: the baseline = base + this adapter"),
        new KeySpec("data", "(this or prompts)", "prepared SFT data: prompts (and reference answers) from its split", KeySpec.Kind.VALUE),
        new KeySpec("prompts", "(this or data)", "instead of data: JSON lines or Parquet with prompt, optional id, lang, reference", KeySpec.Kind.VALUE),
        KeySpec.of("split", "validation", "the split of data whose prompts are judged (held out)"),
        KeySpec.of("data_langs", List.of(), "keep these languages only (empty: all)"),
        KeySpec.of("max_items", 64, "prompts judged, chosen by a seeded hash of their ids; 0 = all"),
        KeySpec.of("seed", 0, "item choice and sampling seed (per item: seed and the item's id)"),
        KeySpec.of("template", "(model if tokenizer_config.json has a chat_template, else llama2)",
            "chat template of prompts-file rows (prepared data is already templated)").oneOf(ai.lathe.model.text.ChatTemplate.NAMES),
        KeySpec.of("generation.max_new_tokens", 64, "new tokens per answer at most"),
        KeySpec.of("generation.temperature", 0.0, "0 = greedy"),
        KeySpec.of("generation.top_k", 0, "0 = off"),
        KeySpec.of("generation.top_p", 1.0, "1 = off"),
        KeySpec.required("judge.model", "the judge: any Hugging Face folder with tokenizer.json; loaded once per executor"),
        KeySpec.of("judge.adapter", "", "optional PEFT adapter on the judge"),
        KeySpec.of("judge.template", "(model if tokenizer_config.json has a chat_template, else llama2)",
            "chat template the judge conversation is rendered with").oneOf(ai.lathe.model.text.ChatTemplate.NAMES),
        new KeySpec("judge.prompt_file", "(the shipped prompt)", "the pairwise prompt: a text file with {question}, {answer_a}, {answer_b} (unset: the shipped MT-Bench-style prompt)", KeySpec.Kind.VALUE),
        KeySpec.of("judge.verdict_prefix", JudgePrompt.DEFAULT.verdictPrefix(), "the judge's reply starts with this; the next token is the verdict"),
        KeySpec.of("judge.labels", List.of("A", "B"), "the two answer labels, each one token after the prefix"),
        KeySpec.of("judge.calibration", "none", "none (both orders must agree, else inconsistent) | balanced (position bias cancelled: s = (logit p1 - logit p2) / 2)")
            .oneOf("none", "balanced"),
        KeySpec.of("judge.margin", 0.0, "with balanced: a win needs s > margin, a loss s < -margin (log-odds), else a tie"),
        KeySpec.of("loss.seq_len", 512, "tokens per sequence of the reference-free losses"),
        new KeySpec("loss.general", "(none)", "prepared SFT data of general (replay) text: its split's loss measures forgetting", KeySpec.Kind.VALUE),
        KeySpec.of("loss.max_rows", 64, "rows per loss set at most"),
        KeySpec.of("gate.min_win_rate", 0.0, "exit 3 and publish nothing when the win rate is below this"),
        KeySpec.of("partitions", 0, "tasks the items are spread over; 0 = the default parallelism"),
        KeySpec.required("output", "folder: items/ (Parquet), summary.json, winrate.png, lathe-eval.json; written atomically"),
        KeySpec.of("quantize", "none", "nf4: hold the base's seven projections in bitsandbytes' NF4 (QLoRA)").oneOf("none", "nf4"),
        KeySpec.of("double_quant", false, "with nf4: quantise the block scales too (8-bit, blocks of 256)"));
  }

  static List<KeySpec> feedback() {
    return List.of(
        KeySpec.required("eval", "output of lathe eval"),
        KeySpec.required("output", "prepared preference data (manifest.json + data/) with provenance columns, and drop/lost.jsonl"),
        KeySpec.of("margin", 0.1, "a win or loss becomes a pair when the candidate's preference (the eval's; balanced: sigmoid(s)) is this far from ½"),
        KeySpec.of("round", 1, "feedback round, recorded in every row"),
        KeySpec.of("val_fraction", 0.0, "validation share of the pairs, by a hash of the prompt"),
        KeySpec.of("allow_empty", false, "commit an output with no pairs (else: an error, nothing replaced)"));
  }
}
