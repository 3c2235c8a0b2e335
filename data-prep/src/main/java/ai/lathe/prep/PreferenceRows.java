package ai.lathe.prep;

import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.ChatTemplate.Message;
import ai.lathe.model.text.HfTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Pure row transforms for preference data: prompt/chosen/rejected with an explicit prompt (text
 * or messages) or an implicit shared prompt (two conversations that differ only in the last
 * assistant turn), and KTO's prompt/completion/label. Errors name the field.
 */
public final class PreferenceRows {
  private PreferenceRows() {}

  /** A preference pair after validation and normalisation. */
  public record Pair(String id, String sourceId, String lang, List<Message> prompt, String chosen, String rejected,
      boolean constructed) implements Serializable {
    /** The train/validation split, by the prompt: every pair of one prompt lands in the same split. */
    public String split(double valFraction) {
      return promptSplit(prompt, valFraction);
    }
  }

  /** A KTO example: one completion with a desirable/undesirable label. */
  public record Labeled(String id, String sourceId, String lang, List<Message> prompt, String completion,
      boolean label) implements Serializable {
    /**
     * The train/validation split, by the prompt: the desirable and undesirable completions of one
     * prompt land in the same split. (By the row's own id they were scattered: training on a
     * prompt's answer moved the held-out metrics of its other completion, and eval margins fell.)
     */
    public String split(double valFraction) {
      return promptSplit(prompt, valFraction);
    }
  }

  /** Split of a prompt's rows: a hash of the prompt turns alone (stable across reruns and new rows). */
  static String promptSplit(List<Message> prompt, double valFraction) {
    return RowTransforms.split("prompt:" + RowTransforms.contentId(prompt), valFraction);
  }

  /** A tokenised pair (schema "preference" v1): full sequences and where their completions start. */
  public record TokenPair(String id, String sourceId, String lang, String split, int[] chosenIds, int chosenStart,
      int[] rejectedIds, int rejectedStart, boolean constructed) implements Serializable {}

  /** A tokenised KTO row (schema "kto" v1). */
  public record TokenLabeled(String id, String sourceId, String lang, String split, int[] inputIds,
      int completionStart, boolean label) implements Serializable {}

  private static String f(Map<String, String> fields, String name) {
    return fields == null || fields.isEmpty() ? name : fields.getOrDefault(name, name);
  }

  /** The prompt turns (text → one user turn; array → messages) or null when absent. */
  static List<Message> prompt(JsonNode row, String key) throws RowTransforms.Rejected {
    JsonNode p = row.get(key);
    if (p == null || p.isNull()) {
      return null;
    }
    if (p.isTextual()) {
      String t = RowTransforms.normalize(p.asText());
      if (t.isEmpty()) {
        throw new RowTransforms.Rejected("field '" + key + "' is empty");
      }
      return List.of(new Message("user", t));
    }
    return messages(p, key);
  }

  static List<Message> messages(JsonNode arr, String key) throws RowTransforms.Rejected {
    if (!arr.isArray() || arr.isEmpty()) {
      throw new RowTransforms.Rejected("field '" + key + "' must be text or a non-empty array of messages");
    }
    List<Message> out = new ArrayList<>();
    for (int i = 0; i < arr.size(); i++) {
      JsonNode m = arr.get(i);
      if (m == null || !m.isObject() || !m.path("role").isTextual() || !m.path("content").isTextual()) {
        throw new RowTransforms.Rejected(key + "[" + i + "] must be an object with string role and content");
      }
      String c = RowTransforms.normalize(m.get("content").asText());
      if (c.isEmpty()) {
        throw new RowTransforms.Rejected(key + "[" + i + "] has empty content");
      }
      out.add(new Message(m.get("role").asText(), c));
    }
    return out;
  }

  /** A completion: text, or an array whose last message is the assistant's. */
  static String completion(JsonNode row, String key) throws RowTransforms.Rejected {
    JsonNode v = row.get(key);
    if (v == null || v.isNull()) {
      throw new RowTransforms.Rejected("missing field '" + key + "'");
    }
    if (v.isTextual()) {
      String t = RowTransforms.normalize(v.asText());
      if (t.isEmpty()) {
        throw new RowTransforms.Rejected("field '" + key + "' is empty");
      }
      return t;
    }
    List<Message> ms = messages(v, key);
    Message last = ms.get(ms.size() - 1);
    if (!last.role().equals("assistant")) {
      throw new RowTransforms.Rejected("field '" + key + "' must end with an assistant message");
    }
    return last.content();
  }

  static String lang(JsonNode row, String field, List<Message> prompt) throws RowTransforms.Rejected {
    JsonNode l = row.get(field);
    if (l == null || l.isNull()) {
      return RowTransforms.detectScript(prompt);
    }
    if (!l.isTextual() || !l.asText().matches("[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")) {
      throw new RowTransforms.Rejected("field '" + field + "' is not a language tag: " + l);
    }
    return l.asText().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
  }

  public static Pair pair(JsonNode row, PrepOptions o) throws RowTransforms.Rejected {
    Map<String, String> fl = o.fields();
    String pk = f(fl, "prompt");
    String ck = f(fl, "chosen");
    String rk = f(fl, "rejected");
    List<Message> prompt = prompt(row, pk);
    String chosen;
    String rejected;
    if (prompt == null) {
      // implicit prompt: both conversations share everything but the last assistant turn
      JsonNode c = row.get(ck);
      JsonNode r = row.get(rk);
      if (c == null || r == null || !c.isArray() || !r.isArray()) {
        throw new RowTransforms.Rejected("without '" + pk + "', '" + ck + "' and '" + rk + "' must be message arrays");
      }
      List<Message> cm = messages(c, ck);
      List<Message> rm = messages(r, rk);
      if (cm.size() < 2 || cm.size() != rm.size() || !cm.subList(0, cm.size() - 1).equals(rm.subList(0, rm.size() - 1))) {
        throw new RowTransforms.Rejected("'" + ck + "' and '" + rk + "' do not share a prompt");
      }
      prompt = cm.subList(0, cm.size() - 1);
      chosen = completion(row, ck);
      rejected = completion(row, rk);
    } else {
      chosen = completion(row, ck);
      rejected = completion(row, rk);
    }
    if (!prompt.get(prompt.size() - 1).role().equals("user")) {
      throw new RowTransforms.Rejected("the prompt must end with a user message");
    }
    if (chosen.equals(rejected)) {
      throw new RowTransforms.Rejected("chosen equals rejected");
    }
    List<Message> all = new ArrayList<>(prompt);
    all.add(new Message("chosen", chosen));
    all.add(new Message("rejected", rejected));
    JsonNode sid = row.get("id");
    return new Pair(RowTransforms.contentId(all), sid == null || sid.isNull() ? "" : sid.asText(),
        lang(row, o.langField(), prompt), List.copyOf(prompt), chosen, rejected, false);
  }

  public static Labeled labeled(JsonNode row, PrepOptions o) throws RowTransforms.Rejected {
    Map<String, String> fl = o.fields();
    List<Message> prompt = prompt(row, f(fl, "prompt"));
    if (prompt == null) {
      throw new RowTransforms.Rejected("missing field '" + f(fl, "prompt") + "'");
    }
    String completion = completion(row, f(fl, "completion"));
    JsonNode l = row.get(f(fl, "label"));
    if (l == null || !l.isBoolean()) {
      throw new RowTransforms.Rejected("field '" + f(fl, "label") + "' must be true or false");
    }
    List<Message> all = new ArrayList<>(prompt);
    all.add(new Message("completion", completion));
    all.add(new Message("label", Boolean.toString(l.asBoolean())));
    JsonNode sid = row.get("id");
    return new Labeled(RowTransforms.contentId(all), sid == null || sid.isNull() ? "" : sid.asText(),
        lang(row, o.langField(), prompt), List.copyOf(prompt), completion, l.asBoolean());
  }

  /** Tokens of prompt + assistant completion, truncated; the index of the first completion token. */
  static int[][] tokens(List<Message> prompt, String completion, HfTokenizer tok, ChatTemplate t, int maxLength)
      throws RowTransforms.Rejected {
    List<Message> conv = new ArrayList<>(prompt);
    conv.add(new Message("assistant", completion));
    ChatTemplate.Tokens tk = t.tokenize(tok, conv);
    int start = -1;
    for (int i = 0; i < tk.train().length; i++) {
      if (tk.train()[i]) {
        start = i;
        break;
      }
    }
    if (start < 1) {
      throw new RowTransforms.Rejected("the completion produced no tokens");
    }
    if (start >= maxLength) {
      throw new RowTransforms.Rejected("prompt longer than max_length (" + start + " >= " + maxLength + " tokens)");
    }
    int[] ids = tk.ids().length > maxLength ? java.util.Arrays.copyOf(tk.ids(), maxLength) : tk.ids();
    return new int[][] {ids, {start}};
  }

  public static TokenPair tokenize(Pair p, String split, HfTokenizer tok, ChatTemplate t, int maxLength)
      throws RowTransforms.Rejected {
    int[][] c = tokens(p.prompt(), p.chosen(), tok, t, maxLength);
    int[][] r = tokens(p.prompt(), p.rejected(), tok, t, maxLength);
    return new TokenPair(p.id(), p.sourceId(), p.lang(), split, c[0], c[1][0], r[0], r[1][0], p.constructed());
  }

  public static TokenLabeled tokenize(Labeled l, String split, HfTokenizer tok, ChatTemplate t, int maxLength)
      throws RowTransforms.Rejected {
    int[][] c = tokens(l.prompt(), l.completion(), tok, t, maxLength);
    return new TokenLabeled(l.id(), l.sourceId(), l.lang(), split, c[0], c[1][0], l.label());
  }

  /**
   * Preference pairs built from instruction rows of one language (sorted by id): chosen is the
   * row's reference answer; rejected is the answer of another row picked by a seeded hash (other),
   * or the row's own answer with its words in a seeded random order (shuffled).
   */
  public static List<Pair> fromInstructions(List<RowTransforms.Clean> sameLang, long seed, String rejectedFrom) {
    List<Pair> out = new ArrayList<>();
    int n = sameLang.size();
    if (n < 2) {
      return out;
    }
    for (int i = 0; i < n; i++) {
      RowTransforms.Clean c = sameLang.get(i);
      long h = MinHash.mix(seed * 0x9E3779B97F4A7C15L ^ c.id().hashCode());
      int j = (int) ((i + 1 + Math.floorMod(h, (long) (n - 1))) % n);
      List<Message> ms = c.messages();
      String chosen = ms.get(ms.size() - 1).content();
      String rejected = rejectedFrom.equals("shuffled") ? shuffleWords(chosen, h)
          : sameLang.get(j).messages().get(sameLang.get(j).messages().size() - 1).content();
      if (chosen.equals(rejected)) {
        continue;
      }
      List<Message> prompt = new ArrayList<>();
      for (Message m : ms.subList(0, ms.size() - 1)) {
        prompt.add(m.role().equals("input") ? new Message("user", m.content()) : m);
      }
      if (prompt.size() > 1 && prompt.get(prompt.size() - 1).role().equals("user")
          && prompt.get(prompt.size() - 2).role().equals("user")) {
        // alpaca instruction + input: one user turn
        Message a = prompt.remove(prompt.size() - 2);
        Message b = prompt.remove(prompt.size() - 1);
        prompt.add(new Message("user", a.content() + "\n\n" + b.content()));
      }
      out.add(new Pair(c.id(), c.sourceId(), c.lang(), prompt, chosen, rejected, true));
    }
    return out;
  }

  /** The words of a text in a seeded random order (a fluent-vs-scrambled negative). */
  static String shuffleWords(String text, long seed) {
    List<String> words = new ArrayList<>(List.of(text.split(" ")));
    java.util.Collections.shuffle(words, new java.util.Random(seed));
    return String.join(" ", words);
  }
}
