package ai.lathe.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import ai.lathe.model.cli.Args;
import ai.lathe.model.config.JobKeys;
import ai.lathe.model.config.KeySpec;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A job's YAML configuration with {@code --set a.b=value} overrides (values parsed as YAML,
 * so numbers, booleans and lists work). Lookups by dotted path; the source is named in errors.
 * An empty value ({@code --set a.b=}, or {@code a.b:} with nothing in the file) resets the key to
 * its default, as if it were not set; {@code --set 'a.b=""'} sets the empty string.
 * {@link #validate} refuses keys its job does not know, values an enumerated key does not allow,
 * and a reset of a required key; every lookup is recorded with its default ({@link #reads}) so
 * tests can hold the code to the reference.
 */
public final class Config {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private final ObjectNode root;
  private final String source;
  /** Where a --set key came from ("--set k=v", "--key"), by dotted path; file keys are not listed. */
  private final Map<String, String> origins = new HashMap<>();
  /** Keys reset by an empty --set (checked by validate: known, and not required), by dotted path. */
  private final Map<String, String> resets = new LinkedHashMap<>();
  /** When each key was last set or reset (a counter over set calls): a later --set wins over an alias's reset. */
  private final Map<String, Integer> setOrder = new HashMap<>();
  private int setCalls;
  /** Every path looked up, with the default the code passed (null for none). */
  private final Map<String, Object> reads = Collections.synchronizedMap(new LinkedHashMap<>());

  private Config(ObjectNode root, String source) {
    this.root = root;
    this.source = source;
  }

  public static Config empty() {
    return new Config(YAML.createObjectNode(), "(defaults)");
  }

  public static Config load(Path file, List<String> overrides) throws IOException {
    Config c;
    if (file == null) {
      c = empty();
    } else {
      if (!Files.isRegularFile(file)) {
        throw new IOException(file + ": config file not found");
      }
      JsonNode n;
      try {
        n = YAML.readTree(file.toFile());
      } catch (IOException e) {
        throw new IOException(file + ": not valid YAML: " + e.getMessage(), e);
      }
      if (n == null || n.isMissingNode() || n.isNull()) {
        n = YAML.createObjectNode();
      }
      if (!n.isObject()) {
        throw new IOException(file + ": the top level must be a mapping");
      }
      c = new Config((ObjectNode) n, file.toString());
    }
    for (String o : overrides) {
      c.set(o);
    }
    return c;
  }

  /** Applies one key=value override (from --set). */
  public void set(String kv) {
    set(kv, "--set " + kv);
  }

  /** Applies one key=value override; origin names where it came from in errors. */
  public void set(String kv, String origin) {
    int eq = kv.indexOf('=');
    if (eq <= 0) {
      throw new IllegalArgumentException("--set needs key=value, got '" + kv + "'");
    }
    String text = kv.substring(eq + 1);
    JsonNode value = null; // key= : back to the default
    if (!text.isEmpty()) {
      try {
        value = YAML.readTree(text);
      } catch (IOException e) {
        throw new IllegalArgumentException("--set " + kv + ": value is not valid YAML");
      }
    }
    set(kv.substring(0, eq), value, origin);
  }

  /**
   * Sets one dotted key to a YAML value (another config's map of overrides); null or a YAML null
   * resets the key to its default, as an empty --set does.
   */
  public void set(String key, JsonNode value, String origin) {
    String[] path = key.split("\\.");
    origins.put(key, origin);
    setOrder.put(key, ++setCalls);
    if (value == null || value.isNull() || value.isMissingNode()) {
      remove(path);
      resets.put(key, origin);
      return;
    }
    resets.remove(key);
    ObjectNode cur = root;
    for (int i = 0; i < path.length - 1; i++) {
      JsonNode next = cur.get(path[i]);
      if (!(next instanceof ObjectNode)) {
        next = cur.putObject(path[i]);
      }
      cur = (ObjectNode) next;
    }
    cur.set(path[path.length - 1], value.deepCopy());
  }

  /** Drops the value at path (a file's or an earlier --set's), keeping the objects above it. */
  private void remove(String[] path) {
    JsonNode cur = root;
    for (int i = 0; i < path.length - 1 && cur != null; i++) {
      cur = cur.get(path[i]);
    }
    if (cur instanceof ObjectNode o) {
      o.remove(path[path.length - 1]);
    }
  }

  /**
   * A bad value of a known key (not allowed, or a required key reset): one line without the usage
   * text, exit 2, before any work.
   */
  public static final class BadValue extends Args.UsageException {
    public BadValue(String msg) {
      super(msg);
    }
  }

  /**
   * Checks this config against a job's keys, before any work: first renames deprecated keys
   * (one line on stderr each), then refuses the first key the job does not list, naming its
   * full dotted path, where it came from (the file or the --set) and the nearest known key.
   * Keys inside map-valued settings (KeySpec.Kind.MAP) are free.
   */
  public Config validate(JobKeys keys) {
    keys.aliases().forEach(this::rename);
    // an old spelling's reset resets the key it names, unless a later --set gave that key a value
    resets.keySet().stream().filter(keys.aliases()::containsKey)
        .filter(r -> setOrder.getOrDefault(keys.aliases().get(r), 0) < setOrder.get(r))
        .forEach(r -> remove(keys.aliases().get(r).split("\\.")));
    List<String> unknown = new ArrayList<>();
    walk(root, "", "", keys, unknown);
    for (String r : resets.keySet()) {
      String spec = keys.aliases().getOrDefault(r, r);
      if (keys.get(spec) == null && !keys.hasChildren(spec) && !underMap(spec, keys)) {
        unknown.add(r);
      }
    }
    if (!unknown.isEmpty()) {
      String path = unknown.get(0);
      throw new Args.UsageException(keys.job() + ": unknown key '" + path + "' in " + originOf(path)
          + " (did you mean '" + keys.nearest(path) + "'?)"
          + (unknown.size() > 1 ? "; also unknown: " + String.join(", ", unknown.subList(1, unknown.size())) : ""));
    }
    checkResets(keys);
    checkAllowed(keys);
    return this;
  }

  private static boolean underMap(String path, JobKeys keys) {
    for (int dot = path.lastIndexOf('.'); dot > 0; dot = path.lastIndexOf('.', dot - 1)) {
      KeySpec k = keys.get(path.substring(0, dot));
      if (k != null && k.kind() == KeySpec.Kind.MAP) {
        return true;
      }
    }
    return false;
  }

  /** An empty value resets a key to its default: a required key has none, so that is an error. */
  private void checkResets(JobKeys keys) {
    for (Map.Entry<String, String> r : resets.entrySet()) {
      String spec = keys.aliases().getOrDefault(r.getKey(), r.getKey());
      KeySpec k = keys.get(spec);
      if (k != null && k.dflt().equals(KeySpec.REQUIRED) && lookup(spec) == null) {
        throw new BadValue(keys.job() + ": '" + spec + "' is required and has no default to reset to (in "
            + r.getValue() + "): give it a value");
      }
    }
  }

  /**
   * Every enumerated key (KeySpec.allowed) that is set holds one of its values, exactly: else one
   * line naming the key, the value, where it came from, the allowed values and the nearest one.
   */
  private void checkAllowed(JobKeys keys) {
    for (KeySpec k : keys.keys()) {
      if (k.allowed().isEmpty()) {
        continue;
      }
      JsonNode v = lookup(k.key());
      if (v == null || v.isValueNode() && k.accepts(v.asText())) {
        continue;
      }
      String got = v.isValueNode() ? v.asText() : v.toString();
      throw new BadValue(keys.job() + ": '" + k.key() + "' cannot be '" + got + "' (in " + originOf(k.key())
          + "); allowed: " + String.join(", ", k.allowed()) + " (did you mean '"
          + ai.lathe.model.config.Nearest.of(got, k.allowed()) + "'?)");
    }
  }

  private void walk(ObjectNode obj, String prefix, String specPrefix, JobKeys keys, List<String> unknown) {
    for (Iterator<Map.Entry<String, JsonNode>> it = obj.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String path = prefix + e.getKey();
      String spec = specPrefix + e.getKey();
      KeySpec k = keys.get(spec);
      JsonNode v = e.getValue();
      if (k != null && k.kind() == KeySpec.Kind.MAP) {
        continue; // free keys inside
      }
      if (v instanceof ObjectNode o && keys.hasChildren(spec)) {
        walk(o, path + ".", spec + ".", keys, unknown);
      } else if (v.isArray() && keys.hasChildren(spec)) {
        for (int i = 0; i < v.size(); i++) {
          if (v.get(i) instanceof ObjectNode o) {
            walk(o, path + "[" + i + "].", spec + "[].", keys, unknown);
          }
        }
      } else if (k == null) {
        unknown.add(path);
      }
    }
  }

  /** The --set that wrote this path (or an object above it), else the config file. */
  private String originOf(String path) {
    String p = path.replaceAll("\\[\\d+\\]", "");
    while (true) {
      if (origins.containsKey(p)) {
        return origins.get(p);
      }
      int dot = p.lastIndexOf('.');
      if (dot < 0) {
        return source;
      }
      p = p.substring(0, dot);
    }
  }

  /** Moves a deprecated key's value to its new path (dropping parents it leaves empty). */
  private void rename(String oldPath, String newPath) {
    JsonNode v = lookup(oldPath);
    if (v == null) {
      return;
    }
    System.err.println("lathe: " + originOf(oldPath) + ": '" + oldPath + "' is deprecated, use '" + newPath + "'");
    String[] parts = oldPath.split("\\.");
    ObjectNode[] chain = new ObjectNode[parts.length];
    JsonNode cur = root;
    for (int i = 0; i < parts.length; i++) {
      chain[i] = (ObjectNode) cur;
      cur = cur.get(parts[i]);
    }
    chain[parts.length - 1].remove(parts[parts.length - 1]);
    for (int i = parts.length - 1; i > 0 && chain[i].isEmpty(); i--) {
      chain[i - 1].remove(parts[i - 1]);
    }
    if (lookup(newPath) != null) {
      throw new Args.UsageException(originOf(oldPath) + ": '" + oldPath + "' (deprecated) and '" + newPath
          + "' are both set; keep '" + newPath + "'");
    }
    String origin = origins.remove(oldPath);
    String[] np = newPath.split("\\.");
    ObjectNode o = root;
    for (int i = 0; i < np.length - 1; i++) {
      JsonNode next = o.get(np[i]);
      if (!(next instanceof ObjectNode)) {
        next = o.putObject(np[i]);
      }
      o = (ObjectNode) next;
    }
    o.set(np[np.length - 1], v);
    if (origin != null) {
      origins.put(newPath, origin);
    }
  }

  /** Every dotted path the code looked up, with the default it passed (null: none or required). */
  public Map<String, Object> reads() {
    synchronized (reads) {
      return new LinkedHashMap<>(reads);
    }
  }

  private void read(String path, Object dflt) {
    reads.putIfAbsent(path, dflt);
  }

  public JsonNode node(String path) {
    read(path, null);
    return lookup(path);
  }

  private JsonNode lookup(String path) {
    JsonNode cur = root;
    for (String p : path.split("\\.")) {
      cur = cur == null ? null : cur.get(p);
    }
    return cur == null || cur.isNull() ? null : cur;
  }

  public boolean has(String path) {
    return node(path) != null;
  }

  private IllegalArgumentException bad(String path, String want, JsonNode got) {
    return new IllegalArgumentException(source + ": '" + path + "' must be " + want + ", got " + got);
  }

  public String str(String path, String dflt) {
    read(path, dflt);
    JsonNode n = node(path);
    if (n == null) {
      return dflt;
    }
    if (!n.isValueNode()) {
      throw bad(path, "a string", n);
    }
    return n.asText();
  }

  public String need(String path) {
    read(path, KeySpec.REQUIRED);
    String s = str(path, null);
    if (s == null || s.isBlank()) {
      throw new IllegalArgumentException(source + ": missing required setting '" + path + "'");
    }
    return s;
  }

  public int integer(String path, int dflt) {
    read(path, dflt);
    JsonNode n = node(path);
    if (n == null) {
      return dflt;
    }
    if (!n.canConvertToInt() || !(n.isIntegralNumber() || n.isTextual() && n.asText().matches("-?\\d+"))) {
      throw bad(path, "an integer", n);
    }
    return n.asInt();
  }

  public double number(String path, double dflt) {
    read(path, dflt);
    JsonNode n = node(path);
    if (n == null) {
      return dflt;
    }
    if (n.isNumber()) {
      return n.asDouble();
    }
    try {
      return Double.parseDouble(n.asText());
    } catch (NumberFormatException e) {
      throw bad(path, "a number", n);
    }
  }

  public boolean bool(String path, boolean dflt) {
    read(path, dflt);
    JsonNode n = node(path);
    if (n == null) {
      return dflt;
    }
    if (n.isBoolean()) {
      return n.asBoolean();
    }
    if (n.isTextual() && (n.asText().equals("true") || n.asText().equals("false"))) {
      return Boolean.parseBoolean(n.asText());
    }
    throw bad(path, "true or false", n);
  }

  public List<String> strings(String path, List<String> dflt) {
    read(path, dflt);
    JsonNode n = node(path);
    if (n == null) {
      return dflt;
    }
    List<String> out = new ArrayList<>();
    if (n.isArray()) {
      n.forEach(x -> out.add(x.asText()));
    } else {
      for (String s : n.asText().split(",")) {
        out.add(s.trim());
      }
    }
    return out;
  }

  public ObjectNode root() {
    return root;
  }

  public String source() {
    return source;
  }
}
