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
 * r and lora_alpha for modules whose full name matches a key; layers_to_transform (null: every
 * layer) limits the adapted decoder layers to the listed indices.
 */
public record LoraConfig(
    int r,
    double loraAlpha,
    List<String> targetModules,
    double loraDropout,
    boolean useRslora,
    boolean useDora,
    Map<String, Integer> rankPattern,
    Map<String, Double> alphaPattern,
    List<Integer> layersToTransform,
    AdaLoraConfig adalora) implements java.io.Serializable {

  public LoraConfig {
    if (adalora != null && (useDora || !(rankPattern == null || rankPattern.isEmpty()))) {
      throw new IllegalArgumentException("AdaLoRA allocates ranks itself: it does not combine with use_dora or "
          + "rank_pattern (PEFT refuses DoRA with AdaLoRA too)");
    }
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
    if (layersToTransform != null) {
      for (int l : layersToTransform) {
        if (l < 0) {
          throw new IllegalArgumentException("layers_to_transform holds a negative layer index " + l);
        }
      }
      layersToTransform = List.copyOf(new java.util.TreeSet<>(layersToTransform));
      if (layersToTransform.isEmpty()) {
        throw new IllegalArgumentException("layers_to_transform is empty: the adapter would adapt nothing");
      }
    }
  }

  /** A LoRA or DoRA adapter (no AdaLoRA). */
  public LoraConfig(int r, double loraAlpha, List<String> targetModules, double loraDropout, boolean useRslora,
      boolean useDora, Map<String, Integer> rankPattern, Map<String, Double> alphaPattern,
      List<Integer> layersToTransform) {
    this(r, loraAlpha, targetModules, loraDropout, useRslora, useDora, rankPattern, alphaPattern, layersToTransform,
        null);
  }

  /** The same adapter as AdaLoRA with these settings (null: plain LoRA). */
  public LoraConfig withAdaLora(AdaLoraConfig a) {
    return new LoraConfig(r, loraAlpha, targetModules, loraDropout, useRslora, useDora, rankPattern, alphaPattern,
        layersToTransform, a);
  }

  /** AdaLoRA's total_step left at 0 resolved to the run's step count (PEFT needs it in the saved config). */
  public LoraConfig forSteps(int totalSteps) {
    return adalora == null || adalora.totalStep() > 0 ? this : withAdaLora(adalora.withTotalStep(totalSteps));
  }

  /** Every decoder layer adapted (layers_to_transform unset). */
  public LoraConfig(int r, double loraAlpha, List<String> targetModules, double loraDropout, boolean useRslora,
      boolean useDora, Map<String, Integer> rankPattern, Map<String, Double> alphaPattern) {
    this(r, loraAlpha, targetModules, loraDropout, useRslora, useDora, rankPattern, alphaPattern, null);
  }

  /** Whether this adapter adapts decoder layer l (PEFT's layers_to_transform; unset: all). */
  public boolean transformsLayer(int layer) {
    return layersToTransform == null || layersToTransform.contains(layer);
  }

  /** layers_to_transform may only name layers the model has. */
  public void checkLayersWithin(int numLayers) {
    if (layersToTransform != null && layersToTransform.get(layersToTransform.size() - 1) >= numLayers) {
      throw new IllegalArgumentException("layers_to_transform " + layersToTransform + " names a layer the model "
          + "does not have (num_hidden_layers " + numLayers + ")");
    }
  }

  /** The same adapter restricted to these layers (null: all). */
  public LoraConfig withLayers(List<Integer> layers) {
    return new LoraConfig(r, loraAlpha, targetModules, loraDropout, useRslora, useDora, rankPattern, alphaPattern,
        layers, adalora);
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
        c.number("lora.dropout", 0.0), c.bool("lora.use_rslora", false), c.bool("lora.use_dora", false), rp, ap,
        null, adaLoraFromConfig(c));
  }

  /** lora.type: lora (default) or adalora, whose settings are lora.init_r, lora.target_r, ... (PEFT's names). */
  static AdaLoraConfig adaLoraFromConfig(ai.lathe.model.Config c) {
    String type = c.str("lora.type", "lora");
    if (!type.equals("lora") && !type.equals("adalora")) {
      throw new IllegalArgumentException("lora.type must be lora or adalora, not '" + type + "'");
    }
    // every key is read (so the key check sees them) before plain LoRA ignores them
    AdaLoraConfig d = AdaLoraConfig.PEFT_DEFAULTS;
    int initR = c.integer("lora.init_r", d.initR());
    int targetR = c.integer("lora.target_r", d.targetR());
    int tinit = c.integer("lora.tinit", d.tinit());
    int tfinal = c.integer("lora.tfinal", d.tfinal());
    int deltaT = c.integer("lora.delta_t", d.deltaT());
    double beta1 = c.number("lora.beta1", d.beta1());
    double beta2 = c.number("lora.beta2", d.beta2());
    double orth = c.number("lora.orth_reg_weight", d.orthRegWeight());
    int totalStep = c.integer("lora.total_step", d.totalStep());
    boolean export = c.bool("lora.export_lora", false);
    return type.equals("lora") ? null
        : new AdaLoraConfig(initR, targetR, tinit, tfinal, deltaT, beta1, beta2, orth, totalStep, export);
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
    return ai.lathe.model.io.HfLayout.modulePath(layer, module);
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
    if (adalora != null) {
      return adalora.initR();
    }
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
    if (layersToTransform == null) {
      o.putNull("layers_to_transform");
      o.putNull("layers_pattern");
    } else {
      var lt = o.putArray("layers_to_transform");
      layersToTransform.forEach(lt::add);
      o.put("layers_pattern", "layers");
    }
    if (adalora != null) {
      // PEFT's AdaLoraConfig: r is unused (init_r is the starting rank); rank_pattern is written
      // by AdapterSet from the modules' masks
      o.put("peft_type", "ADALORA");
      o.put("init_r", adalora.initR());
      o.put("target_r", adalora.targetR());
      o.put("tinit", adalora.tinit());
      o.put("tfinal", adalora.tfinal());
      o.put("deltaT", adalora.deltaT());
      o.put("beta1", adalora.beta1());
      o.put("beta2", adalora.beta2());
      o.put("orth_reg_weight", adalora.orthRegWeight());
      o.put("total_step", adalora.totalStep());
      o.putNull("rank_pattern");
    }
    return o;
  }

  /**
   * Reads PEFT's adapter_config.json fields. Refused: modules_to_save (Lathe neither trains nor
   * loads full modules) and a layers_pattern that does not name Llama's decoder layers ("layers").
   */
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
    JsonNode mts = n.path("modules_to_save");
    if (!(mts.isMissingNode() || mts.isNull() || (mts.isArray() && mts.isEmpty()))) {
      throw new IllegalArgumentException("modules_to_save " + mts + " is not supported: Lathe neither trains nor "
          + "loads fully saved modules, only LoRA/DoRA weights (drop modules_to_save, or merge them into the base first)");
    }
    List<Integer> layers = layersToTransform(n.path("layers_to_transform"), n.path("layers_pattern"));
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
        ap,
        layers);
  }

  /**
   * PEFT's layers_to_transform: an int or a list of ints (null: every layer). Its layers_pattern
   * names the attribute holding the layers; for Llama that is "layers" (a list: any of them).
   */
  static List<Integer> layersToTransform(JsonNode lt, JsonNode pattern) {
    if (lt.isMissingNode() || lt.isNull()) {
      return null;
    }
    List<Integer> out = new ArrayList<>();
    for (JsonNode x : lt.isArray() ? lt : List.of(lt)) {
      if (!x.isIntegralNumber() || !x.canConvertToInt()) {
        throw new IllegalArgumentException("layers_to_transform must be a layer index or a list of them, got " + lt);
      }
      out.add(x.intValue());
    }
    boolean namesLayers = pattern.isMissingNode() || pattern.isNull()
        || (pattern.isTextual() && pattern.textValue().equals("layers"))
        || (pattern.isArray() && (pattern.isEmpty() || java.util.stream.StreamSupport.stream(pattern.spliterator(), false)
            .anyMatch(p -> p.asText().equals("layers"))));
    if (!namesLayers) {
      throw new IllegalArgumentException("layers_pattern " + pattern + " does not name the Llama decoder layers "
          + "(model.layers.<i>): use \"layers\" or leave it unset");
    }
    return out;
  }
}
