package ai.lathe.model.config;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The keys one job or command reads, with defaults and descriptions, and the old spellings it
 * still accepts (old key → new key, applied in this order, each with a deprecation message).
 */
public record JobKeys(String job, String summary, List<KeySpec> keys, Map<String, String> aliases) {

  public JobKeys {
    keys = List.copyOf(keys);
    aliases = Collections.unmodifiableMap(new LinkedHashMap<>(aliases));
    Map<String, KeySpec> seen = new LinkedHashMap<>();
    for (KeySpec k : keys) {
      if (seen.put(k.key(), k) != null) {
        throw new IllegalArgumentException(job + ": key '" + k.key() + "' listed twice");
      }
    }
    for (var e : aliases.entrySet()) {
      if (!seen.containsKey(e.getValue())) {
        throw new IllegalArgumentException(job + ": alias '" + e.getKey() + "' maps to unlisted key " + e.getValue());
      }
    }
  }

  public KeySpec get(String key) {
    for (KeySpec k : keys) {
      if (k.key().equals(key)) {
        return k;
      }
    }
    return null;
  }

  /** Whether some listed key lies below this path (path + "." or path + "[]."). */
  public boolean hasChildren(String path) {
    for (KeySpec k : keys) {
      if (k.key().startsWith(path + ".") || k.key().startsWith(path + "[].")) {
        return true;
      }
    }
    return false;
  }

  /** The listed key nearest to an unknown one, by edit distance over full dotted paths (list indices dropped). */
  public String nearest(String path) {
    List<String> names = new ArrayList<>();
    keys.forEach(k -> names.add(k.key()));
    return Nearest.of(path.replaceAll("\\[\\d+\\]", "[]"), names);
  }

  /** A key's description in the reference: its allowed values (if enumerated), then its doc. */
  static String describe(KeySpec k) {
    if (k.allowed().isEmpty()) {
      return k.doc();
    }
    return "one of `" + String.join("`, `", k.allowed()) + "`. " + k.doc();
  }

  /** The reference section of this job: a Markdown table of key, default and description. */
  public String markdown() {
    StringBuilder sb = new StringBuilder();
    sb.append("#### ").append(job).append("\n\n").append(summary).append("\n\n");
    sb.append("| key | default | description |\n| --- | --- | --- |\n");
    for (KeySpec k : keys) {
      sb.append("| `").append(k.key()).append("` | ").append(k.dflt().isEmpty() ? "" : "`" + k.dflt() + "`")
          .append(" | ").append(describe(k).replace("|", "\\|")).append(" |\n");
    }
    if (!aliases.isEmpty()) {
      sb.append("\nOld spellings still accepted (with a deprecation message): ");
      List<String> parts = new ArrayList<>();
      aliases.forEach((o, n) -> parts.add("`" + o + "` → `" + n + "`"));
      sb.append(String.join(", ", parts)).append(".\n");
    }
    return sb.toString();
  }
}
