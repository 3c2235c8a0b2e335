package ai.lathe.model.train;

import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.DataSplit;
import ai.lathe.model.text.Examples;
import ai.lathe.model.text.HfTokenizer;
import ai.lathe.model.text.JsonlData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Instruction data for the local trainer, read from JSON lines and tokenised with a chat template.
 * Rows go to validation by {@link DataSplit} (a hash of their normalised content, as in prep), so
 * the split is stable across reruns, when rows are added, and between prep and sft-local. Bad rows are errors naming file, line and field.
 */
public final class SftData {
  public final List<ChatTemplate.Tokens> train = new ArrayList<>();
  public final List<ChatTemplate.Tokens> validation = new ArrayList<>();
  public int truncated;
  public int dropped;

  public static SftData load(Path file, String format, Map<String, String> fields, ChatTemplate template,
      HfTokenizer tok, int seqLen, double valFraction, Set<String> langs, int maxRows) throws IOException {
    SftData d = new SftData();
    JsonlData.forEach(file, r -> {
      if (maxRows > 0 && d.train.size() + d.validation.size() + d.dropped >= maxRows) {
        return;
      }
      if (!langs.isEmpty() && !langs.contains(r.json().path("lang").asText(""))) {
        return;
      }
      List<ChatTemplate.Message> ms;
      try {
        ms = Examples.toMessages(r.json(), format, fields);
      } catch (Examples.BadRow e) {
        throw new IllegalArgumentException(file + ":" + r.line() + ": " + e.getMessage());
      }
      ChatTemplate.Tokens t = template.tokenize(tok, ms);
      if (t.ids().length > seqLen) {
        d.truncated++;
        t = new ChatTemplate.Tokens(java.util.Arrays.copyOf(t.ids(), seqLen), java.util.Arrays.copyOf(t.train(), seqLen));
      }
      if (t.trainCount() == 0) {
        d.dropped++;
        return;
      }
      // the split prep gives the same conversation: by its normalised content id
      boolean val = DataSplit.split(DataSplit.normalizedContentId(ms), valFraction).equals(DataSplit.VALIDATION);
      (val ? d.validation : d.train).add(t);
    });
    return d;
  }

}
