package ai.lathe.model.adapter;

import ai.lathe.model.LlamaWeights;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A LoRA adapter's configuration, with PEFT's field names and meaning: scaling is
 * lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA; rank_pattern and alpha_pattern override
 * r and lora_alpha for modules whose full name matches a key.
 */
public record LoraConfig(
    int r,
    double loraAlpha,
    List<String> targetModules,
    double loraDropout,
    boolean useRslora,
    boolean useDora,
    Map<String, Integer> rankPattern,
    Map<String, Double> alphaPattern) implements java.io.Serializable {

  public LoraConfig {
    if (r <= 0) {
      throw new IllegalArgumentException("LoRA r must be positive, got " + r);
    }
    if (loraDropout < 0 || loraDropout >= 1) {
      throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + loraDropout);
    }
    if (useDora && targetModules != null) {
      for (String t : targetModules) {
        if (!t.equals("all-linear") && !LlamaWeights.MODULES.contains(t)) {
          throw new IllegalArgumentException("DoRA is not supported on module '" + t + "': it decomposes the linear "
              + "projections " + LlamaWeights.MODULES + " (use plain LoRA, or drop it from target_modules)");
        }
      }
    }
    targetModules = expand(targetModules);
    rankPattern = rankPattern == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(rankPattern));
    alphaPattern = alphaPattern == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(alphaPattern));
    rankPattern.forEach((k, v) -> {
      if (v <= 0) {
        throw new IllegalArgumentException("rank_pattern '" + k + "' must be positive, got " + v);
      }
    });
  }

  /**
   * The lora.* keys of a job config: r, alpha, target_modules, dropout, use_rslora, use_dora,
   * rank_pattern and alpha_pattern (PEFT's names and meaning: a key matches a module path suffix).
   */
  public static LoraConfig fromConfig(ai.lathe.model.Config c) {
    Map<String, Integer> rp = new LinkedHashMap<>();
    Map<String, Double> ap = new LinkedHashMap<>();
    if (c.node("lora.rank_pattern") != null) {
      c.node("lora.rank_pattern").fields().forEachRemaining(e -> rp.put(e.getKey(), e.getValue().asInt()));
    }
    if (c.node("lora.alpha_pattern") != null) {
      c.node("lora.alpha_pattern").fields().forEachRemaining(e -> ap.put(e.getKey(), e.getValue().asDouble()));
    }
    return new LoraConfig(c.integer("lora.r", 8), c.number("lora.alpha", 16),
        c.strings("lora.target_modules", List.of("q_proj", "k_proj", "v_proj", "o_proj")),
        c.number("lora.dropout", 0.0), c.bool("lora.use_rslora", false), c.bool("lora.use_dora", false), rp, ap);
  }

  public static LoraConfig of(int r, double alpha, List<String> targets) {
    return new LoraConfig(r, alpha, targets, 0.0, false, false, Map.of(), Map.of());
  }

  private static List<String> expand(List<String> targets) {
    if (targets == null || targets.isEmpty()) {
      throw new IllegalArgumentException("target_modules must name at least one module");
    }
    List<String> out = new ArrayList<>();
    for (String t : targets) {
      if (t.equals("all-linear")) {
        for (String m : LlamaWeights.MODULES) {
          if (!out.contains(m)) {
            out.add(m);
          }
        }
      } else if (LlamaWeights.MODULES.contains(t)) {
        if (!out.contains(t)) {
          out.add(t);
        }
      } else {
        throw new IllegalArgumentException("unknown target module '" + t + "' (supported: "
            + LlamaWeights.MODULES + " or all-linear)");
      }
    }
    // keep the canonical module order so parameter order never depends on how targets were listed
    out.sort((a, b) -> LlamaWeights.MODULES.indexOf(a) - LlamaWeights.MODULES.indexOf(b));
    return List.copyOf(out);
  }

  /** Full module name as PEFT sees it, e.g. model.layers.3.self_attn.q_proj. */
  public static String modulePath(int layer, String module) {
    String key = LlamaWeights.moduleKey(layer, module);
    return key.substring(0, key.length() - ".weight".length());
  }

  private static <T> T match(Map<String, T> pattern, String path, T dflt) {
    for (var e : pattern.entrySet()) {
      if (path.equals(e.getKey()) || Pattern.compile("(.*\\.)?" + e.getKey() + "$").matcher(path).matches()) {
        return e.getValue();
      }
    }
    return dflt;
  }

  public int rankFor(String path) {
    return match(rankPattern, path, r);
  }

  public double alphaFor(String path) {
    return match(alphaPattern, path, loraAlpha);
  }

  public double scaleFor(String path) {
    int rank = rankFor(path);
    double alpha = alphaFor(path);
    return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
  }

  /** The adapter_config.json PEFT writes for this adapter. */
  public ObjectNode toPeftJson(String baseModel) {
    ObjectMapper om = new ObjectMapper();
    ObjectNode o = om.createObjectNode();
    o.put("peft_type", "LORA");
    o.put("task_type", "CAUSAL_LM");
    o.put("base_model_name_or_path", baseModel);
    o.put("r", r);
    o.put("lora_alpha", loraAlpha);
    o.put("lora_dropout", loraDropout);
    var tm = o.putArray("target_modules");
    targetModules.forEach(tm::add);
    o.put("use_rslora", useRslora);
    o.put("use_dora", useDora);
    o.put("bias", "none");
    o.put("fan_in_fan_out", false);
    o.put("inference_mode", true);
    o.put("init_lora_weights", true);
    ObjectNode rp = o.putObject("rank_pattern");
    rankPattern.forEach(rp::put);
    ObjectNode ap = o.putObject("alpha_pattern");
    alphaPattern.forEach(ap::put);
    o.putNull("modules_to_save");
    o.putNull("layers_to_transform");
    return o;
  }

  /** Reads PEFT's adapter_config.json fields. */
  public static LoraConfig fromPeftJson(JsonNode n) {
    String type = n.path("peft_type").asText("LORA");
    if (!type.equals("LORA")) {
      throw new IllegalArgumentException("unsupported peft_type '" + type + "' (only LORA)");
    }
    if (!n.path("bias").asText("none").equals("none")) {
      throw new IllegalArgumentException("LoRA bias '" + n.path("bias").asText() + "' is not supported");
    }
    if (n.path("fan_in_fan_out").asBoolean(false)) {
      throw new IllegalArgumentException("fan_in_fan_out adapters are not supported");
    }
    List<String> targets = new ArrayList<>();
    JsonNode tm = n.path("target_modules");
    if (tm.isArray()) {
      tm.forEach(t -> targets.add(t.asText()));
    } else if (tm.isTextual()) {
      targets.add(tm.asText());
    }
    Map<String, Integer> rp = new LinkedHashMap<>();
    n.path("rank_pattern").fields().forEachRemaining(e -> rp.put(e.getKey(), e.getValue().asInt()));
    Map<String, Double> ap = new LinkedHashMap<>();
    n.path("alpha_pattern").fields().forEachRemaining(e -> ap.put(e.getKey(), e.getValue().asDouble()));
    return new LoraConfig(
        n.path("r").asInt(8),
        n.path("lora_alpha").asDouble(8),
        targets,
        n.path("lora_dropout").asDouble(0.0),
        n.path("use_rslora").asBoolean(false),
        n.path("use_dora").asBoolean(false),
        rp,
        ap);
  }
}
