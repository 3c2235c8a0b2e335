package ai.lathe.model.gen;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The ids that end a reply, as transformers' generate stops: generation_config.json's eos_token_id
 * (an int or a list: Llama 3 lists &lt;|end_of_text|&gt; and &lt;|eot_id|&gt;), config.json's
 * eos_token_id, and the tokenizer's eos_token (tokenizer_config.json).
 */
public final class StopTokens {
  private StopTokens() {}

  /** The union of the folder's end ids and tokenizerEos (negative: none). */
  public static int[] read(Path modelDir, int tokenizerEos) throws IOException {
    Set<Integer> ids = new LinkedHashSet<>();
    for (String f : new String[] {"generation_config.json", "config.json"}) {
      Path p = modelDir.resolve(f);
      if (!Files.isRegularFile(p)) {
        continue;
      }
      JsonNode n;
      try {
        n = new ObjectMapper().readTree(p.toFile());
      } catch (IOException e) {
        throw new IOException(p + ": not valid JSON: " + e.getMessage(), e);
      }
      JsonNode eos = n.path("eos_token_id");
      if (eos.isArray()) {
        for (int i = 0; i < eos.size(); i++) {
          ids.add(id(eos.get(i), p, "eos_token_id[" + i + "]"));
        }
      } else if (!eos.isMissingNode() && !eos.isNull()) {
        ids.add(id(eos, p, "eos_token_id"));
      }
    }
    if (tokenizerEos >= 0) {
      ids.add(tokenizerEos);
    }
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }

  private static int id(JsonNode v, Path file, String field) throws IOException {
    if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 0) {
      throw new IOException(file + ": field '" + field + "' must be a token id (a non-negative integer), got " + v);
    }
    return v.asInt();
  }
}
