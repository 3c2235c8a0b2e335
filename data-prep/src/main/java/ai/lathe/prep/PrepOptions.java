package ai.lathe.prep;

import ai.lathe.model.Config;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The settings of the instruction-data prep stages, read from YAML (keys in comments). */
public record PrepOptions(
    List<String> inputs, // input: one path or a list (local, hdfs://, any Hadoop URI)
    String inputType, // input_type: jsonl | parquet | arrow | hf-datasets
    String format, // format: alpaca | messages | prompt-completion
    Map<String, String> fields, // fields: renames, e.g. {instruction: question}
    String langField, // lang_field: the column holding the language (default lang)
    String template, // template: model | llama2 | chatml | alpaca | none (default: model when the tokenizer has a chat_template)
    int maxLength, // max_length: tokens
    String overLength, // over_length: truncate | drop
    double valFraction, // val_fraction
    double maxRejectFraction, // max_reject_fraction: fail the job above this share of rejects
    String output, // output
    String tokenizer, // tokenizer: tokenizer.json or a model folder holding one
    int partitions, // partitions: output files per (lang, split); 0 = 1
    int maxChars, // max_chars: rows longer than this are rejected before parsing
    boolean nearDedup, // near_dedup.enabled: MinHash LSH near-duplicate removal
    double nearThreshold, // near_dedup.threshold: estimated Jaccard of 5-gram shingles
    int numPerm, // near_dedup.num_perm
    List<String> replayInputs, // replay.input: general data mixed into train
    double replayFraction, // replay.fraction: replay rows ≈ fraction × train rows
    String kind, // kind: sft | preference | kto (default from the format)
    long pairSeed, // pair_seed: for preference pairs built from instruction data
    String pairRejected, // pair_rejected: other (another row's response) | shuffled (the response's words shuffled)
    boolean packing) // packing: lay SFT examples end to end into rows of max_length
    implements Serializable {

  public static PrepOptions from(Config c) {
    Map<String, String> fields = new LinkedHashMap<>();
    if (c.node("fields") != null) {
      c.node("fields").fields().forEachRemaining(e -> fields.put(e.getKey(), e.getValue().asText()));
    }
    String format = c.str("format", "alpaca");
    if (!List.of("alpaca", "messages", "prompt-completion", "preference", "kto").contains(format)) {
      throw new IllegalArgumentException(c.source() + ": unknown format '" + format
          + "' (alpaca, messages, prompt-completion, preference, kto)");
    }
    String kind = c.str("kind", format.equals("preference") || format.equals("kto") ? format : "sft");
    if (!List.of("sft", "preference", "kto").contains(kind) || kind.equals("kto") && !format.equals("kto")
        || kind.equals("sft") && (format.equals("preference") || format.equals("kto"))) {
      throw new IllegalArgumentException(c.source() + ": kind '" + kind + "' cannot be made from format '" + format
          + "' (preference pairs can be built from instruction formats)");
    }
    String inputType = c.str("input_type", "jsonl");
    if (!List.of("jsonl", "parquet", "arrow", "hf-datasets").contains(inputType)) {
      throw new IllegalArgumentException(c.source() + ": input_type must be jsonl, parquet, arrow or hf-datasets, got "
          + inputType);
    }
    String over = c.str("over_length", "truncate");
    if (!over.equals("truncate") && !over.equals("drop")) {
      throw new IllegalArgumentException(c.source() + ": over_length must be truncate or drop, got " + over);
    }
    double maxReject = c.number("max_reject_fraction", 0.5);
    double val = c.number("val_fraction", 0.1);
    if (val < 0 || val >= 1 || maxReject < 0 || maxReject > 1) {
      throw new IllegalArgumentException(c.source() + ": val_fraction must be in [0, 1) and max_reject_fraction in [0, 1]");
    }
    String rejected = c.str("pair_rejected", "other");
    if (!rejected.equals("other") && !rejected.equals("shuffled")) {
      throw new IllegalArgumentException(c.source() + ": pair_rejected must be other or shuffled, got " + rejected);
    }
    return new PrepOptions(c.strings("input", null) == null ? List.of(c.need("input")) : c.strings("input", null),
        inputType, format, fields, c.str("lang_field", "lang"),
        c.str("template", ai.lathe.model.text.ChatTemplate.defaultName(java.nio.file.Path.of(c.need("tokenizer")), "llama2")),
        c.integer("max_length", 1024), over, val, maxReject, c.need("output"), c.need("tokenizer"),
        c.integer("partitions", 1), c.integer("max_chars", 1_000_000), c.bool("near_dedup.enabled", false),
        c.number("near_dedup.threshold", 0.8), c.integer("near_dedup.num_perm", 128),
        c.strings("replay.input", List.of()), c.number("replay.fraction", 0.0), kind, c.integer("pair_seed", 0),
        rejected,        c.bool("packing", false));
  }
}
