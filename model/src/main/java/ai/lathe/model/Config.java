package ai.lathe.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A job's YAML configuration with {@code --set a.b=value} overrides (values parsed as YAML,
 * so numbers, booleans and lists work). Lookups by dotted path; the source is named in errors.
 */
public final class Config {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private final ObjectNode root;
  private final String source;

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

  /** Applies one key=value override. */
  public void set(String kv) {
    int eq = kv.indexOf('=');
    if (eq <= 0) {
      throw new IllegalArgumentException("--set needs key=value, got '" + kv + "'");
    }
    String[] path = kv.substring(0, eq).split("\\.");
    JsonNode value;
    try {
      value = YAML.readTree(kv.substring(eq + 1));
    } catch (IOException e) {
      throw new IllegalArgumentException("--set " + kv + ": value is not valid YAML");
    }
    if (value == null || value.isMissingNode()) {
      value = YAML.getNodeFactory().textNode("");
    }
    ObjectNode cur = root;
    for (int i = 0; i < path.length - 1; i++) {
      JsonNode next = cur.get(path[i]);
      if (!(next instanceof ObjectNode)) {
        next = cur.putObject(path[i]);
      }
      cur = (ObjectNode) next;
    }
    cur.set(path[path.length - 1], value);
  }

  public JsonNode node(String path) {
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
    String s = str(path, null);
    if (s == null || s.isBlank()) {
      throw new IllegalArgumentException(source + ": missing required setting '" + path + "'");
    }
    return s;
  }

  public int integer(String path, int dflt) {
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
