package ai.lathe.prep;

import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.ChatTemplate.Message;
import ai.lathe.model.text.DataSplit;
import ai.lathe.model.text.Examples;
import ai.lathe.model.text.HfTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The pure row transforms of instruction prep: strict UTF-8 decoding, JSON parsing, validation,
 * normalisation (NFC, line endings, surrounding whitespace), content ids, the train/validation
 * split and tokenisation. No Spark here: the jobs call these on executors.
 */
public final class RowTransforms {
  private static final ObjectMapper OM = new ObjectMapper();

  private RowTransforms() {}

  /** A row that failed validation: the reason names the field. */
  public static final class Rejected extends Exception {
    public Rejected(String reason) {
      super(reason, null, false, false);
    }
  }

  /** A validated, normalised conversation with its language and content id. */
  public record Clean(String id, String sourceId, String lang, List<Message> messages) implements java.io.Serializable {}

  public static String decodeStrict(byte[] raw, int len) throws Rejected {
    try {
      return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw, 0, len)).toString();
    } catch (CharacterCodingException e) {
      throw new Rejected("invalid UTF-8");
    }
  }

  public static JsonNode parse(String line) throws Rejected {
    try {
      JsonNode n = OM.readTree(line);
      if (n == null || !n.isObject()) {
        throw new Rejected("not a JSON object");
      }
      return n;
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new Rejected("not valid JSON: " + e.getOriginalMessage());
    }
  }

  /** NFC, \r\n and \r to \n, runs of 3+ newlines to 2, stripped (see DataSplit). */
  public static String normalize(String s) {
    return DataSplit.normalize(s);
  }

  /** Validates and normalises one row of an instruction format. */
  public static Clean clean(JsonNode row, PrepOptions o) throws Rejected {
    List<Message> ms;
    try {
      ms = Examples.toMessages(row, o.format(), o.fields().isEmpty() ? null : o.fields());
    } catch (Examples.BadRow e) {
      throw new Rejected(e.getMessage());
    }
    List<Message> norm = new ArrayList<>();
    for (Message m : ms) {
      String c = normalize(m.content());
      if (c.isEmpty() && !m.role().equals("input")) {
        throw new Rejected("empty " + m.role() + " text after normalisation");
      }
      if (c.indexOf('\u0000') >= 0) {
        throw new Rejected("NUL character in " + m.role() + " text");
      }
      norm.add(new Message(m.role(), c));
    }
    JsonNode langNode = row.get(o.langField());
    String lang;
    if (langNode == null || langNode.isNull()) {
      lang = detectScript(norm);
    } else if (!langNode.isTextual() || !langNode.asText().matches("[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")) {
      throw new Rejected("field '" + o.langField() + "' is not a language tag: " + langNode);
    } else {
      lang = langNode.asText().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }
    JsonNode sid = row.get("id");
    return new Clean(contentId(norm), sid == null || sid.isNull() ? "" : sid.asText(), lang, norm);
  }

  /** A crude script-based language guess for rows without a language field. */
  static String detectScript(List<Message> ms) {
    int[] counts = new int[5]; // han, cyrillic, arabic, hebrew, latin
    for (Message m : ms) {
      m.content().codePoints().forEach(cp -> {
        Character.UnicodeScript s = Character.UnicodeScript.of(cp);
        switch (s) {
          case HAN, HIRAGANA, KATAKANA -> counts[0]++;
          case CYRILLIC -> counts[1]++;
          case ARABIC -> counts[2]++;
          case HEBREW -> counts[3]++;
          case LATIN -> counts[4]++;
          default -> { }
        }
      });
    }
    String[] tags = {"zh", "ru", "ar", "he", "und"};
    int best = 4;
    for (int i = 0; i < 4; i++) {
      if (counts[i] > counts[best]) {
        best = i;
      }
    }
    return tags[best];
  }

  /** SHA-256 over roles and normalised contents (first 16 bytes, hex): equal content, equal id. */
  public static String contentId(List<Message> ms) {
    return DataSplit.contentId(ms);
  }

  /** validation when the first 7 bytes of SHA-256("split:" + id) fall below the fraction. */
  public static String split(String id, double valFraction) {
    return DataSplit.split(id, valFraction);
  }

  /** Tokenised example, or null when over-length rows are dropped. */
  public static PreparedRow tokenize(Clean c, String split, HfTokenizer tok, ChatTemplate t, PrepOptions o)
      throws Rejected {
    ChatTemplate.Tokens tk = t.tokenize(tok, c.messages());
    boolean truncated = false;
    int[] ids = tk.ids();
    boolean[] mask = tk.train();
    if (ids.length > o.maxLength()) {
      if (o.overLength().equals("drop")) {
        throw new Rejected("over max_length (" + ids.length + " > " + o.maxLength() + " tokens)");
      }
      ids = java.util.Arrays.copyOf(ids, o.maxLength());
      mask = java.util.Arrays.copyOf(mask, o.maxLength());
      truncated = true;
    }
    int loss = 0;
    for (int i = 1; i < mask.length; i++) {
      loss += mask[i] ? 1 : 0;
    }
    if (loss == 0) {
      throw new Rejected("no completion tokens left after truncation to " + o.maxLength());
    }
    return new PreparedRow(c.id(), c.sourceId(), c.lang(), split, ids, mask, PreparedRow.sequential(ids.length),
        ids.length, loss, truncated);
  }
}
