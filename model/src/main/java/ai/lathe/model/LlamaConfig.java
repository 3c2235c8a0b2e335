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
 * Llama, Mistral and Qwen2-style configs share this math (Qwen2's q/k/v biases are not supported).
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
    int eosTokenId) implements java.io.Serializable {

  public static final Set<String> SUPPORTED_TYPES = Set.of("llama", "mistral");

  public LlamaConfig {
    require(vocabSize > 0, "vocab_size must be positive");
    require(hiddenSize > 0, "hidden_size must be positive");
    require(numLayers > 0, "num_hidden_layers must be positive");
    require(numHeads > 0 && hiddenSize % numHeads == 0,
        "hidden_size " + hiddenSize + " must be a multiple of num_attention_heads " + numHeads);
    require(numKvHeads > 0 && numHeads % numKvHeads == 0,
        "num_attention_heads " + numHeads + " must be a multiple of num_key_value_heads " + numKvHeads);
    require((hiddenSize / numHeads) % 2 == 0, "head dimension must be even for rotary embeddings");
    require(intermediateSize > 0, "intermediate_size must be positive");
    require(rmsNormEps > 0, "rms_norm_eps must be positive");
    require(ropeTheta > 0, "rope_theta must be positive");
  }

  private static void require(boolean ok, String msg) {
    if (!ok) {
      throw new IllegalArgumentException("invalid Llama config: " + msg);
    }
  }

  public int headDim() {
    return hiddenSize / numHeads;
  }

  public int kvDim() {
    return numKvHeads * headDim();
  }

  /** Output and input width of a target module, [out, in], as stored in HF checkpoints. */
  public int[] moduleShape(String module) {
    int d = hiddenSize;
    return switch (module) {
      case "q_proj" -> new int[] {d, d};
      case "k_proj", "v_proj" -> new int[] {kvDim(), d};
      case "o_proj" -> new int[] {d, d};
      case "gate_proj", "up_proj" -> new int[] {intermediateSize, d};
      case "down_proj" -> new int[] {d, intermediateSize};
      default -> throw new IllegalArgumentException("unknown module " + module);
    };
  }

  /** Parameter count of the whole model. */
  public long parameterCount() {
    long d = hiddenSize;
    long perLayer = 2 * d + d * d * 2 + 2L * kvDim() * d + 3L * intermediateSize * d;
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

  public static LlamaConfig fromJson(JsonNode n) {
    String type = n.path("model_type").asText("");
    if (!SUPPORTED_TYPES.contains(type)) {
      throw new IllegalArgumentException("unsupported architecture: model_type '" + type
          + "' (supported: " + SUPPORTED_TYPES + ")");
    }
    if (n.path("attention_bias").asBoolean(false) || n.path("mlp_bias").asBoolean(false)) {
      throw new IllegalArgumentException("attention_bias/mlp_bias are not supported");
    }
    String act = n.path("hidden_act").asText("silu");
    if (!act.equals("silu")) {
      throw new IllegalArgumentException("unsupported hidden_act '" + act + "' (only silu)");
    }
    JsonNode scaling = n.path("rope_scaling");
    if (!scaling.isMissingNode() && !scaling.isNull()) {
      throw new IllegalArgumentException("rope_scaling is not supported yet: " + scaling);
    }
    int heads = need(n, "num_attention_heads");
    return new LlamaConfig(
        type,
        need(n, "vocab_size"),
        need(n, "hidden_size"),
        need(n, "num_hidden_layers"),
        heads,
        n.path("num_key_value_heads").asInt(heads),
        need(n, "intermediate_size"),
        n.path("rms_norm_eps").asDouble(1e-6),
        n.path("rope_theta").asDouble(10000.0),
        n.path("tie_word_embeddings").asBoolean(false),
        n.path("max_position_embeddings").asInt(2048),
        n.path("bos_token_id").asInt(1),
        n.path("eos_token_id").asInt(2));
  }

  private static int need(JsonNode n, String key) {
    JsonNode v = n.get(key);
    if (v == null || !v.canConvertToInt()) {
      throw new IllegalArgumentException("missing or non-integer field '" + key + "'");
    }
    return v.asInt();
  }

  public ObjectNode toJson() {
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.putArray("architectures").add(modelType.equals("mistral") ? "MistralForCausalLM" : "LlamaForCausalLM");
    o.put("model_type", modelType);
    o.put("vocab_size", vocabSize);
    o.put("hidden_size", hiddenSize);
    o.put("num_hidden_layers", numLayers);
    o.put("num_attention_heads", numHeads);
    o.put("num_key_value_heads", numKvHeads);
    o.put("intermediate_size", intermediateSize);
    o.put("rms_norm_eps", rmsNormEps);
    o.put("rope_theta", ropeTheta);
    o.put("tie_word_embeddings", tieWordEmbeddings);
    o.put("max_position_embeddings", maxPositionEmbeddings);
    o.put("bos_token_id", bosTokenId);
    o.put("eos_token_id", eosTokenId);
    o.put("hidden_act", "silu");
    o.put("torch_dtype", "float32");
    return o;
  }
}
