package ai.lathe.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * The architecture of a Llama-family decoder, read from a Hugging Face {@code config.json}.
 * Families (model_type): llama (Llama 2 and 3.x: llama3 rope scaling, tied heads, explicit
 * head_dim), mistral (sliding-window attention), qwen2 (frozen q/k/v biases), qwen3 (RMSNorm
 * per head on q and k before RoPE). Anything else in a config that changes the math is refused.
 *
 * @param headDim width of one attention head (transformers' head_dim, else hidden/heads)
 * @param ropeScaling llama3 frequency scaling, or null for plain RoPE
 * @param slidingWindow mistral: query i sees key j when 0 &lt;= i − j &lt; window; 0 = full attention
 */
public record LlamaConfig(
    String modelType,
    int vocabSize,
    int hiddenSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int intermediateSize,
    double rmsNormEps,
    double ropeTheta,
    boolean tieWordEmbeddings,
    int maxPositionEmbeddings,
    int bosTokenId,
    int eosTokenId,
    int headDim,
    RopeScaling ropeScaling,
    int slidingWindow) implements java.io.Serializable {

  public static final Set<String> SUPPORTED_TYPES = Set.of("llama", "mistral", "qwen2", "qwen3");

  public LlamaConfig {
    require(SUPPORTED_TYPES.contains(modelType), "model_type '" + modelType + "' (supported: llama, mistral, "
        + "qwen2, qwen3)");
    require(vocabSize > 0, "vocab_size must be positive");
    require(hiddenSize > 0, "hidden_size must be positive");
    require(numLayers > 0, "num_hidden_layers must be positive");
    require(numHeads > 0, "num_attention_heads must be positive");
    require(numKvHeads > 0 && numHeads % numKvHeads == 0,
        "num_attention_heads " + numHeads + " must be a multiple of num_key_value_heads " + numKvHeads);
    require(headDim > 0 && headDim % 2 == 0, "head_dim " + headDim + " must be positive and even for rotary "
        + "embeddings");
    require(intermediateSize > 0, "intermediate_size must be positive");
    require(rmsNormEps > 0, "rms_norm_eps must be positive");
    require(ropeTheta > 0, "rope_theta must be positive");
    require(slidingWindow >= 0, "sliding_window must be positive or null");
    require(slidingWindow == 0 || modelType.equals("mistral"), "sliding_window is only supported for mistral");
  }

  /** A Llama-2-style config: head_dim = hidden/heads, plain RoPE, full attention. */
  public LlamaConfig(String modelType, int vocabSize, int hiddenSize, int numLayers, int numHeads, int numKvHeads,
      int intermediateSize, double rmsNormEps, double ropeTheta, boolean tieWordEmbeddings,
      int maxPositionEmbeddings, int bosTokenId, int eosTokenId) {
    this(modelType, vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize, rmsNormEps, ropeTheta,
        tieWordEmbeddings, maxPositionEmbeddings, bosTokenId, eosTokenId, defaultHeadDim(hiddenSize, numHeads),
        null, 0);
  }

  private static int defaultHeadDim(int hidden, int heads) {
    require(heads > 0 && hidden % heads == 0,
        "hidden_size " + hidden + " must be a multiple of num_attention_heads " + heads + " (or give head_dim)");
    return hidden / heads;
  }

  /**
   * A small config of one family for tests, benches and init-model: llama (Llama 2), llama3 (rope
   * scaling as Llama 3.1), qwen2, qwen3, mistral (sliding window given). headDim 0 = dim/heads.
   */
  public static LlamaConfig family(String family, int vocab, int dim, int layers, int heads, int kvHeads, int ffn,
      int headDim, double ropeTheta, boolean tie, int maxPos, int slidingWindow) {
    int hd = headDim > 0 ? headDim : defaultHeadDim(dim, heads);
    String type = switch (family) {
      case "llama", "llama3" -> "llama";
      case "qwen2", "qwen3", "mistral" -> family;
      default -> throw new IllegalArgumentException("unknown family '" + family
          + "' (llama, llama3, qwen2, qwen3, mistral)");
    };
    if (slidingWindow > 0 && !family.equals("mistral")) {
      throw new IllegalArgumentException("a sliding window is only supported for the mistral family");
    }
    double eps = type.startsWith("qwen") ? 1e-6 : 1e-5;
    return new LlamaConfig(type, vocab, dim, layers, heads, kvHeads, ffn, eps, ropeTheta, tie, maxPos, 1, 2, hd,
        family.equals("llama3") ? RopeScaling.llama31() : null, slidingWindow);
  }

  private static void require(boolean ok, String msg) {
    if (!ok) {
      throw new IllegalArgumentException("invalid Llama config: " + msg);
    }
  }

  /** Qwen2 has biases on q_proj, k_proj and v_proj (frozen, like the weights). */
  public boolean qkvBias() {
    return modelType.equals("qwen2");
  }

  /** Qwen3 RMS-normalises every head of q and k (weights [head_dim]) before RoPE. */
  public boolean qkNorm() {
    return modelType.equals("qwen3");
  }

  /** Width of all query heads (q_proj's output, o_proj's input). */
  public int qDim() {
    return numHeads * headDim;
  }

  public int kvDim() {
    return numKvHeads * headDim;
  }

  /** Output and input width of a target module, [out, in], as stored in HF checkpoints ({@link Projection#shape}). */
  public int[] moduleShape(String module) {
    return Projection.of(module).shape(this);
  }

  /** Parameter count of the whole model. */
  public long parameterCount() {
    long d = hiddenSize;
    long perLayer = 2 * d + 2L * qDim() * d + 2L * kvDim() * d + 3L * intermediateSize * d
        + (qkvBias() ? qDim() + 2L * kvDim() : 0) + (qkNorm() ? 2L * headDim : 0);
    long emb = (long) vocabSize * d;
    return emb + (tieWordEmbeddings ? 0 : emb) + d + numLayers * perLayer;
  }

  public static LlamaConfig read(Path configJson) throws IOException {
    if (!Files.exists(configJson)) {
      throw new IOException(configJson + ": config.json not found");
    }
    JsonNode n;
    try {
      n = new ObjectMapper().readTree(configJson.toFile());
    } catch (IOException e) {
      throw new IOException(configJson + ": not valid JSON: " + e.getMessage(), e);
    }
    try {
      return fromJson(n);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
    }
  }

  /** One refused key: what Lathe does not implement is never silently ignored. */
  private static ConfigJsonRefusal unsupported(String key, JsonNode value, String supported) {
    return new ConfigJsonRefusal("unsupported config: " + key + " = " + value + " (" + supported + ")");
  }

  public static LlamaConfig fromJson(JsonNode n) {
    String type = n.path("model_type").asText("");
    if (!SUPPORTED_TYPES.contains(type)) {
      throw unsupported("model_type", n.path("model_type"), "supported: llama, mistral, qwen2, qwen3");
    }
    // qwen2 always has q/k/v biases and no o_proj bias; attention_bias (llama, qwen3) would add
    // biases to all four projections, which Lathe does not implement
    if (n.path("attention_bias").asBoolean(false)) {
      throw unsupported("attention_bias", n.get("attention_bias"), "only false is supported for " + type);
    }
    if (n.path("mlp_bias").asBoolean(false)) {
      throw unsupported("mlp_bias", n.get("mlp_bias"), "only false is supported");
    }
    String act = n.path("hidden_act").asText("silu");
    if (!act.equals("silu")) {
      throw unsupported("hidden_act", n.get("hidden_act"), "only silu is supported");
    }
    if (n.hasNonNull("partial_rotary_factor") && n.get("partial_rotary_factor").asDouble() != 1.0) {
      throw unsupported("partial_rotary_factor", n.get("partial_rotary_factor"), "only 1.0 is supported");
    }
    if (n.hasNonNull("attention_dropout") && n.get("attention_dropout").asDouble() != 0.0) {
      throw unsupported("attention_dropout", n.get("attention_dropout"), "only 0.0 is supported");
    }
    int window = 0;
    if (type.equals("mistral")) {
      JsonNode sw = n.path("sliding_window");
      if (!sw.isMissingNode() && !sw.isNull()) {
        if (!sw.canConvertToInt() || sw.asInt() <= 0) {
          throw unsupported("sliding_window", sw, "a positive integer or null");
        }
        window = sw.asInt();
      }
    } else if (type.startsWith("qwen") && n.path("use_sliding_window").asBoolean(false)) {
      throw unsupported("use_sliding_window", n.get("use_sliding_window"), "only false is supported for " + type);
    }
    JsonNode layerTypes = n.path("layer_types");
    if (layerTypes.isArray()) {
      for (JsonNode t : layerTypes) {
        if (!t.asText().equals("full_attention")) {
          throw unsupported("layer_types", layerTypes, "only full_attention layers are supported");
        }
      }
    }
    int heads = need(n, "num_attention_heads");
    int hidden = need(n, "hidden_size");
    int headDim = n.hasNonNull("head_dim") ? need(n, "head_dim") : defaultHeadDim(hidden, heads);
    double theta = n.path("rope_theta").asDouble(10000.0);
    RopeScaling scaling = null;
    for (String key : new String[] {"rope_scaling", "rope_parameters"}) {
      JsonNode r = n.path(key);
      if (r.isMissingNode() || r.isNull()) {
        continue;
      }
      if (!r.isObject()) {
        throw unsupported(key, r, "an object with rope_type");
      }
      String typeKey = r.has("rope_type") ? "rope_type" : "type";
      String ropeType = r.path(typeKey).asText("default");
      if (r.hasNonNull("rope_theta")) {
        theta = r.get("rope_theta").asDouble(); // transformers 5 keeps rope_theta in rope_parameters
      }
      if (r.hasNonNull("partial_rotary_factor") && r.get("partial_rotary_factor").asDouble() != 1.0) {
        throw unsupported(key + ".partial_rotary_factor", r.get("partial_rotary_factor"),
            "only 1.0 is supported");
      }
      switch (ropeType) {
        case "default" -> { }
        case "llama3" -> scaling = llama3(r, key);
        default -> throw unsupported(key + "." + typeKey, r.get(typeKey), "supported: default, llama3");
      }
    }
    return new LlamaConfig(
        type,
        need(n, "vocab_size"),
        hidden,
        need(n, "num_hidden_layers"),
        heads,
        n.hasNonNull("num_key_value_heads") ? need(n, "num_key_value_heads") : heads,
        need(n, "intermediate_size"),
        n.path("rms_norm_eps").asDouble(1e-6),
        theta,
        n.path("tie_word_embeddings").asBoolean(false),
        n.path("max_position_embeddings").asInt(2048),
        n.path("bos_token_id").asInt(1),
        n.path("eos_token_id").asInt(2),
        headDim,
        scaling,
        window);
  }

  /** Llama 3's scaling from the rope object r under key; a missing, non-numeric or invalid field is refused. */
  private static RopeScaling llama3(JsonNode r, String key) {
    double factor = needNumber(r, key, "factor");
    double low = needNumber(r, key, "low_freq_factor");
    double high = needNumber(r, key, "high_freq_factor");
    int original = (int) needNumber(r, key, "original_max_position_embeddings");
    try {
      return new RopeScaling(factor, low, high, original);
    } catch (IllegalArgumentException e) {
      throw unsupported(key, r, e.getMessage());
    }
  }

  private static double needNumber(JsonNode r, String key, String field) {
    JsonNode v = r.get(field);
    if (v == null || !v.isNumber()) {
      throw new ConfigJsonRefusal("missing or non-numeric field '" + key + "." + field + "' for llama3 rope "
          + "scaling");
    }
    return v.asDouble();
  }

  private static int need(JsonNode n, String key) {
    JsonNode v = n.get(key);
    if (v == null || !v.canConvertToInt()) {
      throw new ConfigJsonRefusal("missing or non-integer field '" + key + "'");
    }
    return v.asInt();
  }

  public ObjectNode toJson() {
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.putArray("architectures").add(switch (modelType) {
      case "mistral" -> "MistralForCausalLM";
      case "qwen2" -> "Qwen2ForCausalLM";
      case "qwen3" -> "Qwen3ForCausalLM";
      default -> "LlamaForCausalLM";
    });
    o.put("model_type", modelType);
    o.put("vocab_size", vocabSize);
    o.put("hidden_size", hiddenSize);
    o.put("num_hidden_layers", numLayers);
    o.put("num_attention_heads", numHeads);
    o.put("num_key_value_heads", numKvHeads);
    o.put("head_dim", headDim);
    o.put("intermediate_size", intermediateSize);
    o.put("rms_norm_eps", rmsNormEps);
    o.put("rope_theta", ropeTheta);
    if (ropeScaling != null) {
      o.putObject("rope_scaling").put("rope_type", "llama3").put("factor", ropeScaling.factor())
          .put("low_freq_factor", ropeScaling.lowFreqFactor()).put("high_freq_factor", ropeScaling.highFreqFactor())
          .put("original_max_position_embeddings", ropeScaling.originalMaxPositionEmbeddings());
    }
    if (modelType.equals("mistral")) {
      if (slidingWindow > 0) {
        o.put("sliding_window", slidingWindow);
      } else {
        o.putNull("sliding_window");
      }
    }
    if (modelType.startsWith("qwen")) {
      o.put("use_sliding_window", false);
    }
    if (!modelType.equals("qwen2")) {
      o.put("attention_bias", false);
    }
    o.put("tie_word_embeddings", tieWordEmbeddings);
    o.put("max_position_embeddings", maxPositionEmbeddings);
    o.put("bos_token_id", bosTokenId);
    o.put("eos_token_id", eosTokenId);
    o.put("hidden_act", "silu");
    o.put("torch_dtype", "float32");
    return o;
  }
}
