package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.lathe.model.Config;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Seeded, bounded fuzz of prep's row path (strict UTF-8 decoding, JSON parsing, validation of
 * each format): a mutated row is either accepted or rejected with a reason (Rejected), never
 * any other exception, which in a job would only say "unreadable row" and hide the field.
 */
class RowFuzzTest {
  private static final Map<String, String> SEEDS = Map.of(
      "alpaca", "{\"lang\":\"en\",\"id\":\"1\",\"instruction\":\"What is Debian?\",\"input\":\"\",\"output\":\"An OS.\"}",
      "messages", "{\"lang\":\"de\",\"messages\":[{\"role\":\"user\",\"content\":\"Hallo?\"},"
          + "{\"role\":\"assistant\",\"content\":\"Guten Tag.\"}]}",
      "prompt-completion", "{\"prompt\":\"2+2=\",\"completion\":\"4\"}",
      "preference", "{\"prompt\":\"Best OS?\",\"chosen\":\"Debian.\",\"rejected\":\"None.\"}",
      "kto", "{\"prompt\":\"Best OS?\",\"completion\":\"Debian.\",\"label\":true}");

  static PrepOptions options(String format) {
    Config c = Config.empty();
    c.set("input=x.jsonl");
    c.set("output=out");
    c.set("tokenizer=tok");
    c.set("format=" + format);
    if (format.equals("kto") || format.equals("preference")) {
      c.set("kind=" + format);
    }
    return PrepOptions.from(c);
  }

  /** One random edit: a byte flipped, inserted or deleted, a cut, a splice of JSON-significant text. */
  static byte[] mutate(byte[] b, Random r) {
    List<Byte> l = new ArrayList<>();
    for (byte x : b) {
      l.add(x);
    }
    int edits = 1 + r.nextInt(4);
    String[] tokens = {"{", "}", "[", "]", "\"", ":", ",", "null", "true", "1e999", "-0", "\\u0000", "\\ud800",
        "\"role\"", "\"content\"", "\"assistant\"", "[]", "{}", "\"\""};
    for (int e = 0; e < edits && !l.isEmpty(); e++) {
      int at = r.nextInt(l.size());
      switch (r.nextInt(5)) {
        case 0 -> l.set(at, (byte) r.nextInt(256));
        case 1 -> l.add(at, (byte) (0x80 + r.nextInt(128))); // a stray continuation or lead byte
        case 2 -> l.remove(at);
        case 3 -> l.subList(at, l.size()).clear();
        default -> {
          byte[] t = tokens[r.nextInt(tokens.length)].getBytes(StandardCharsets.UTF_8);
          for (int i = t.length - 1; i >= 0; i--) {
            l.add(at, t[i]);
          }
        }
      }
    }
    byte[] out = new byte[l.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = l.get(i);
    }
    return out;
  }

  @Test
  void mutatedRowsAreAcceptedOrRejectedWithAReason() {
    Random r = new Random(20261129);
    long deadline = System.nanoTime() + 3_000_000_000L;
    int n = 0;
    int accepted = 0;
    while (n < 2000 || System.nanoTime() < deadline && n < 50_000) {
      for (var e : SEEDS.entrySet()) {
        PrepOptions o = options(e.getKey());
        byte[] raw = mutate(e.getValue().getBytes(StandardCharsets.UTF_8), r);
        try {
          String text = RowTransforms.decodeStrict(raw, raw.length);
          var json = RowTransforms.parse(text);
          switch (e.getKey()) {
            case "kto" -> PreferenceRows.labeled(json, o);
            case "preference" -> PreferenceRows.pair(json, o);
            default -> RowTransforms.clean(json, o);
          }
          accepted++;
        } catch (RowTransforms.Rejected ok) {
          assertTrue(ok.getMessage() != null && !ok.getMessage().isBlank(), "a rejection names its reason");
        } catch (RuntimeException | StackOverflowError bad) {
          fail(e.getKey() + " row " + new String(raw, StandardCharsets.ISO_8859_1) + " threw " + bad, bad);
        }
        n++;
      }
    }
    assertTrue(accepted > 0 && accepted < n, "some mutations are harmless, most are not: " + accepted + "/" + n);
  }
}
