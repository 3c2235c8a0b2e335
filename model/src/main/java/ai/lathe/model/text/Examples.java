package ai.lathe.model.text;

import ai.lathe.model.text.ChatTemplate.Message;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Turns one raw row (a JSON object) of a supported instruction format into a conversation.
 * Formats: alpaca (instruction, input, output), messages (role/content, or ShareGPT's
 * from/value), prompt-completion. Field names can be remapped. Errors name the field.
 */
public final class Examples {
  private Examples() {}

  /** A row that cannot become an example; the message names the field. */
  public static final class BadRow extends RuntimeException {
    public BadRow(String msg) {
      super(msg);
    }
  }

  public static List<Message> toMessages(JsonNode row, String format, Map<String, String> fields) {
    return switch (format) {
      case "alpaca" -> {
        String instruction = text(row, field(fields, "instruction"), true);
        String input = text(row, field(fields, "input"), false);
        String output = text(row, field(fields, "output"), true);
        List<Message> m = new ArrayList<>();
        m.add(new Message("user", instruction));
        if (input != null && !input.isBlank()) {
          m.add(new Message("input", input));
        }
        m.add(new Message("assistant", output));
        yield m;
      }
      case "prompt-completion" -> List.of(
          new Message("user", text(row, field(fields, "prompt"), true)),
          new Message("assistant", text(row, field(fields, "completion"), true)));
      case "messages" -> messages(row, fields);
      default -> throw new IllegalArgumentException("unknown format '" + format
          + "' (alpaca, messages, prompt-completion)");
    };
  }

  private static String field(Map<String, String> fields, String name) {
    return fields == null ? name : fields.getOrDefault(name, name);
  }

  static String text(JsonNode row, String name, boolean required) {
    JsonNode v = row.get(name);
    if (v == null || v.isNull()) {
      if (required) {
        throw new BadRow("missing field '" + name + "'");
      }
      return null;
    }
    if (!v.isTextual()) {
      throw new BadRow("field '" + name + "' must be a string, got " + v.getNodeType().toString().toLowerCase());
    }
    String s = v.asText();
    if (required && s.isBlank()) {
      throw new BadRow("field '" + name + "' is empty");
    }
    return s;
  }

  private static List<Message> messages(JsonNode row, Map<String, String> fields) {
    String key = field(fields, "messages");
    JsonNode arr = row.get(key);
    if (arr == null && fields == null && row.has("conversations")) {
      key = "conversations";
      arr = row.get(key);
    }
    if (arr == null || !arr.isArray()) {
      throw new BadRow("field '" + key + "' must be an array of messages");
    }
    List<Message> out = new ArrayList<>();
    for (int i = 0; i < arr.size(); i++) {
      JsonNode m = arr.get(i);
      if (m == null || !m.isObject()) {
        throw new BadRow(key + "[" + i + "] must be an object");
      }
      boolean share = m.has("from");
      String role = text(m, share ? "from" : "role", true);
      String content = text(m, share ? "value" : "content", true);
      role = switch (role) {
        case "human", "user" -> "user";
        case "gpt", "assistant", "model" -> "assistant";
        case "system" -> "system";
        default -> throw new BadRow(key + "[" + i + "]: unknown role '" + role + "'");
      };
      out.add(new Message(role, content));
    }
    validateOrder(out, key);
    return out;
  }

  /** system? then alternating user/assistant, starting with user and ending with assistant. */
  static void validateOrder(List<Message> ms, String key) {
    int i = 0;
    if (!ms.isEmpty() && ms.get(0).role().equals("system")) {
      i = 1;
    }
    if (i >= ms.size()) {
      throw new BadRow("field '" + key + "' has no user/assistant turns");
    }
    String expect = "user";
    for (; i < ms.size(); i++) {
      if (!ms.get(i).role().equals(expect)) {
        throw new BadRow(key + "[" + i + "]: expected role '" + expect + "', got '" + ms.get(i).role() + "'");
      }
      expect = expect.equals("user") ? "assistant" : "user";
    }
    if (!ms.get(ms.size() - 1).role().equals("assistant")) {
      throw new BadRow("field '" + key + "' must end with an assistant turn");
    }
  }
}
