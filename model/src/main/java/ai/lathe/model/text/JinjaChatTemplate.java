package ai.lathe.model.text;

import ai.lathe.model.text.ChatTemplate.Message;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.CompositeELResolver;

/**
 * A model's own chat template: the Jinja {@code chat_template} of its tokenizer_config.json,
 * rendered with Jinjava the way transformers' {@code apply_chat_template} renders it (trim_blocks,
 * lstrip_blocks; variables messages, add_generation_prompt, bos_token, eos_token; functions
 * raise_exception and strftime_now; tools and enable_thinking left undefined, as transformers
 * leaves them when not given).
 */
public final class JinjaChatTemplate {
  private final Path source;
  private final String template;
  private final String bos; // null when tokenizer_config has none (then bos_token is undefined)
  private final String eos;
  private final Jinjava jinja;

  JinjaChatTemplate(Path source, String template, String bos, String eos) {
    this.source = source;
    this.template = adapt(template);
    this.bos = bos;
    this.eos = eos;
    CompositeELResolver resolver = new CompositeELResolver();
    resolver.add(new PyStringMethods());
    resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
    this.jinja = new Jinjava(JinjavaConfig.newBuilder()
        .withTrimBlocks(true).withLstripBlocks(true).withFailOnUnknownTokens(false)
        .withElResolver(resolver)
        .withLegacyOverrides(LegacyOverrides.newBuilder().withUseNaturalOperatorPrecedence(true)
            .withParseWhitespaceControlStrictly(true).withUseTrimmingForNotesAndExpressions(true).build())
        .build());
    jinja.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
        JinjaChatTemplate.class, "raiseException", String.class));
    jinja.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
        JinjaChatTemplate.class, "strftimeNow", String.class));
  }

  /**
   * The chat template of tokenizer_config.json beside tokenizer.json (a model folder, or the
   * tokenizer file itself), or null when there is no config or it has no chat_template. A list of
   * named templates (transformers' format) gives the one named "default".
   */
  public static JinjaChatTemplate load(Path dirOrFile) throws IOException {
    Path cfg = Files.isDirectory(dirOrFile) ? dirOrFile.resolve("tokenizer_config.json")
        : dirOrFile.resolveSibling("tokenizer_config.json");
    if (!Files.isRegularFile(cfg)) {
      return null;
    }
    JsonNode c;
    try {
      c = new ObjectMapper().readTree(cfg.toFile());
    } catch (IOException e) {
      throw new IOException(cfg + ": not valid JSON: " + e.getMessage(), e);
    }
    JsonNode t = c.path("chat_template");
    String text = null;
    if (t.isTextual()) {
      text = t.asText();
    } else if (t.isArray()) {
      for (JsonNode named : t) {
        if ("default".equals(named.path("name").asText())) {
          text = named.path("template").asText();
        }
      }
      if (text == null) {
        throw new IOException(cfg + ": chat_template is a list without a template named 'default'");
      }
    } else if (!t.isMissingNode() && !t.isNull()) {
      throw new IOException(cfg + ": chat_template must be a string or a list of {name, template}");
    }
    if (text == null) {
      return null;
    }
    return new JinjaChatTemplate(cfg, text, tokenText(c.path("bos_token")), tokenText(c.path("eos_token")));
  }

  /** bos_token/eos_token: a string, an AddedToken object ({"content": ...}) or null. */
  static String tokenText(JsonNode n) {
    if (n.isTextual()) {
      return n.asText();
    }
    if (n.isObject() && n.path("content").isTextual()) {
      return n.path("content").asText();
    }
    return null;
  }

  /**
   * Rewrites the Python-only syntax the published templates use into what Jinjava parses:
   * {@code x[::-1]} becomes {@code x|reverse}, and keyword arguments of {@code namespace(...)}
   * get parentheses ({@code n=a|length - 1} would otherwise bind as {@code (n=a|length) - 1}).
   */
  static String adapt(String t) {
    String s = t.replace("[::-1]", "|reverse");
    StringBuilder out = new StringBuilder();
    int from = 0;
    for (int i = s.indexOf("namespace("); i >= 0; i = s.indexOf("namespace(", from)) {
      int open = i + "namespace(".length();
      int close = matching(s, open);
      if (close < 0) {
        break;
      }
      out.append(s, from, open);
      List<String> args = topLevelArgs(s.substring(open, close));
      for (int k = 0; k < args.size(); k++) {
        String a = args.get(k);
        int eq = a.indexOf('=');
        boolean kw = eq > 0 && a.substring(0, eq).strip().matches("\\w+") && (eq + 1 >= a.length() || a.charAt(eq + 1) != '=');
        out.append(k == 0 ? "" : ",").append(kw ? a.substring(0, eq + 1) + "(" + a.substring(eq + 1) + ")" : a);
      }
      out.append(')');
      from = close + 1;
    }
    return out.append(s.substring(from)).toString();
  }

  /** Index of the ')' closing the parenthesis opened just before {@code open}, quotes respected; -1 if none. */
  private static int matching(String s, int open) {
    int depth = 0;
    char quote = 0;
    for (int i = open; i < s.length(); i++) {
      char c = s.charAt(i);
      if (quote != 0) {
        if (c == '\\') {
          i++;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '(' || c == '[' || c == '{') {
        depth++;
      } else if (c == ')' || c == ']' || c == '}') {
        if (depth == 0) {
          return c == ')' ? i : -1;
        }
        depth--;
      }
    }
    return -1;
  }

  private static List<String> topLevelArgs(String s) {
    List<String> out = new ArrayList<>();
    int depth = 0;
    char quote = 0;
    int start = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (quote != 0) {
        if (c == '\\') {
          i++;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '(' || c == '[' || c == '{') {
        depth++;
      } else if (c == ')' || c == ']' || c == '}') {
        depth--;
      } else if (c == ',' && depth == 0) {
        out.add(s.substring(start, i));
        start = i + 1;
      }
    }
    if (!s.isBlank()) {
      out.add(s.substring(start));
    }
    return out;
  }

  /** raise_exception(message) in a template: rendering fails with that message. */
  public static String raiseException(String message) {
    throw new TemplateException(message);
  }

  /** strftime_now(format): today's date in Python strftime format (%d %m %Y %y %b %B %H %M %S %%). */
  public static String strftimeNow(String format) {
    java.time.LocalDateTime now = java.time.LocalDateTime.now();
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < format.length(); i++) {
      char c = format.charAt(i);
      if (c != '%' || i + 1 == format.length()) {
        sb.append(c);
        continue;
      }
      char f = format.charAt(++i);
      String pattern = switch (f) {
        case 'd' -> "dd";
        case 'm' -> "MM";
        case 'Y' -> "yyyy";
        case 'y' -> "yy";
        case 'b' -> "MMM";
        case 'B' -> "MMMM";
        case 'H' -> "HH";
        case 'M' -> "mm";
        case 'S' -> "ss";
        case '%' -> "'%'";
        default -> throw new TemplateException("strftime_now: unsupported directive %" + f);
      };
      sb.append(now.format(java.time.format.DateTimeFormatter.ofPattern(pattern, java.util.Locale.ENGLISH)));
    }
    return sb.toString();
  }

  /** A failure raised by the template (raise_exception) or an unsupported function. */
  static final class TemplateException extends RuntimeException {
    TemplateException(String msg) {
      super(msg);
    }
  }

  public Path source() {
    return source;
  }

  public String bosToken() {
    return bos;
  }

  public String eosToken() {
    return eos;
  }

  /** Renders messages as the template defines; any template error fails with the config file named. */
  public String render(List<Message> messages, boolean addGenerationPrompt) {
    List<Map<String, Object>> ms = new ArrayList<>();
    for (Message m : messages) {
      Map<String, Object> mm = new LinkedHashMap<>();
      mm.put("role", m.role());
      mm.put("content", m.content());
      ms.add(mm);
    }
    Map<String, Object> vars = new HashMap<>();
    vars.put("messages", ms);
    vars.put("add_generation_prompt", addGenerationPrompt);
    if (bos != null) {
      vars.put("bos_token", bos);
    }
    if (eos != null) {
      vars.put("eos_token", eos);
    }
    RenderResult r;
    try {
      r = jinja.renderForResult(template, vars);
    } catch (RuntimeException e) {
      throw fail(rootMessage(e));
    }
    for (TemplateError err : r.getErrors()) {
      if (err.getSeverity() == TemplateError.ErrorType.FATAL) {
        throw fail(err.getException() != null ? rootMessage(err.getException()) : err.getMessage());
      }
    }
    return r.getOutput();
  }

  private IllegalArgumentException fail(String msg) {
    return new IllegalArgumentException(source + ": chat_template failed: " + msg);
  }

  private static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      if (t instanceof TemplateException) {
        break;
      }
      t = t.getCause();
    }
    return t.getMessage();
  }
}
