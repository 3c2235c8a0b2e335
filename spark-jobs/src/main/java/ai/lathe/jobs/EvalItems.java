package ai.lathe.jobs;

import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.HfTokenizer;
import ai.lathe.prep.PreparedRow;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;

/**
 * The held-out prompts of an eval, read on the driver: from prepared SFT data (the prompt is the
 * row's tokens before its first trained token, the reference answer its trained tokens) or from a
 * prompts file (JSON lines or Parquet: prompt, optional id, lang, reference; templated like prep).
 */
final class EvalItems {
  private EvalItems() {}

  /** One prompt: its tokens under the policy's tokenizer, its text for the judge and an optional reference. */
  record Item(String id, String lang, String prompt, int[] promptIds, int[] referenceIds, String where)
      implements Serializable {}

  static List<Item> load(SparkSession spark, EvalSettings s, HfTokenizer tok, int maxPos) throws Exception {
    List<Item> all = s.data() != null ? fromPrepared(spark, s, tok) : fromPrompts(spark, s, tok);
    List<Item> chosen = choose(all, s.seed(), s.maxItems());
    String src = s.data() != null ? s.data() + " (split " + s.split() + ")" : s.prompts();
    if (chosen.isEmpty()) {
      throw new IllegalArgumentException(src + ": no prompts to evaluate" + (s.langs().isEmpty() ? ""
          : " in languages " + s.langs()) + "; nothing was written");
    }
    for (Item it : chosen) {
      if (it.promptIds().length + 1 > maxPos) {
        throw new IllegalArgumentException(it.where() + ": field prompt has " + it.promptIds().length
            + " tokens; with one new token it exceeds the model's max_position_embeddings " + maxPos);
      }
      if (s.baselineKind().equals("reference") && (it.referenceIds() == null || it.referenceIds().length == 0)) {
        throw new IllegalArgumentException(it.where() + ": field reference is missing, and baseline.kind is reference");
      }
    }
    return chosen;
  }

  /** max items (0: all) in the order of a seeded hash of their ids: the same seed chooses the same items. */
  static List<Item> choose(List<Item> all, long seed, int max) {
    List<Item> sorted = new ArrayList<>(all);
    sorted.sort(Comparator.comparing((Item it) -> sha(seed + ":" + it.id())).thenComparing(Item::id));
    return max > 0 && sorted.size() > max ? List.copyOf(sorted.subList(0, max)) : sorted;
  }

  static String sha(String s) {
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
          .digest(s.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static List<Item> fromPrepared(SparkSession spark, EvalSettings s, HfTokenizer tok) throws Exception {
    PreparedData.checkManifest(s.data(), s.model(), spark.sparkContext().hadoopConfiguration());
    List<PreparedRow> rows = PreparedData.examples(spark, s.data(), s.split(), s.langs()).collect();
    List<Item> out = new ArrayList<>();
    int skipped = 0;
    for (PreparedRow r : rows) {
      String where = s.data() + ": row id=" + r.id();
      int k = 0;
      while (k < r.lossMask().length && !r.lossMask()[k]) {
        k++;
      }
      if (k == 0) {
        throw new IllegalArgumentException(where + ": field loss_mask trains the first token: the row has no prompt");
      }
      if (k == r.lossMask().length) {
        skipped++; // the answer was truncated away by prep's max_length: nothing to compare against
        continue;
      }
      List<Integer> ref = new ArrayList<>();
      for (int i = k; i < r.inputIds().length; i++) {
        if (r.lossMask()[i]) {
          ref.add(r.inputIds()[i]);
        }
      }
      int[] p = java.util.Arrays.copyOf(r.inputIds(), k);
      out.add(new Item(r.id(), r.lang(), text(tok, p), p, ref.stream().mapToInt(Integer::intValue).toArray(), where));
    }
    if (skipped > 0) {
      System.out.printf("eval: %d rows of %s left out: prep's max_length cut their answers off entirely%n", skipped,
          s.data());
    }
    return out;
  }

  static List<Item> fromPrompts(SparkSession spark, EvalSettings s, HfTokenizer tok) {
    String f = s.prompts();
    Dataset<Row> df = f.endsWith(".parquet") || f.endsWith("/") ? spark.read().parquet(f) : spark.read().json(f);
    if (!List.of(df.columns()).contains("prompt")) {
      throw new IllegalArgumentException(f + ": field prompt is missing (columns " + List.of(df.columns()) + ")");
    }
    df = df.withColumn("_row", functions.monotonically_increasing_id());
    ChatTemplate t = ChatTemplate.of(s.template() != null ? s.template()
        : ChatTemplate.defaultName(java.nio.file.Path.of(tok.file().toString()), "llama2"));
    List<Item> out = new ArrayList<>();
    boolean hasId = List.of(df.columns()).contains("id");
    boolean hasLang = List.of(df.columns()).contains("lang");
    boolean hasRef = List.of(df.columns()).contains("reference");
    for (Row r : df.orderBy("_row").collectAsList()) {
      long n = r.getLong(r.fieldIndex("_row"));
      Object prompt = r.get(r.fieldIndex("prompt"));
      String where = f + ": row " + (n + 1);
      if (!(prompt instanceof String p) || p.isBlank()) {
        throw new IllegalArgumentException(where + ": field prompt must be non-empty text");
      }
      String lang = hasLang && r.get(r.fieldIndex("lang")) instanceof String l ? l : "und";
      String ref = hasRef && r.get(r.fieldIndex("reference")) instanceof String x && !x.isBlank() ? x : null;
      String id = hasId && r.get(r.fieldIndex("id")) != null ? String.valueOf(r.get(r.fieldIndex("id")))
          : sha(lang + "\n" + p).substring(0, 16);
      // the prompt's tokens are the conversation's tokens before the first trained one (as in prep)
      ChatTemplate.Tokens tk = t.tokenize(tok, p, ref == null ? "." : ref);
      int k = 0;
      while (k < tk.train().length && !tk.train()[k]) {
        k++;
      }
      int[] refIds = null;
      if (ref != null) {
        List<Integer> l = new ArrayList<>();
        for (int i = k; i < tk.ids().length; i++) {
          if (tk.train()[i]) {
            l.add(tk.ids()[i]);
          }
        }
        refIds = l.stream().mapToInt(Integer::intValue).toArray();
      }
      out.add(new Item(id, lang, p, java.util.Arrays.copyOf(tk.ids(), k), refIds, where + " (id " + id + ")"));
    }
    return out;
  }

  /** Text of tokens for the judge: special tokens (BOS, EOS, end of turn) dropped. */
  static String text(HfTokenizer tok, int[] ids) {
    return tok.decodeSkippingSpecial(ids).strip();
  }
}
