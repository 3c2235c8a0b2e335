package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.cli.Main;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.Safetensors;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** Reading each family's config keys, refusing what is not implemented, and checkpoint mismatches. */
class FamilyConfigTest {
  static final ObjectMapper OM = new ObjectMapper();

  static ObjectNode base(String type) {
    return (ObjectNode) OM.valueToTree(Map.of("model_type", type, "vocab_size", 50, "hidden_size", 16,
        "num_hidden_layers", 1, "num_attention_heads", 4, "num_key_value_heads", 2, "intermediate_size", 24));
  }

  static String refusal(ObjectNode cfg, @TempDir Path tmp) throws Exception {
    Path f = tmp.resolve("config.json");
    OM.writeValue(f.toFile(), cfg);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(f));
    assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
    return e.getMessage();
  }

  @Test
  void readsEachFamilysKeys() throws Exception {
    ObjectNode l3 = base("llama").put("head_dim", 8).put("tie_word_embeddings", true);
    l3.putObject("rope_scaling").put("type", "llama3").put("factor", 32.0).put("low_freq_factor", 1.0)
        .put("high_freq_factor", 4.0).put("original_max_position_embeddings", 8192);
    LlamaConfig c = LlamaConfig.fromJson(l3);
    assertEquals(new RopeScaling(32.0, 1.0, 4.0, 8192), c.ropeScaling());
    assertEquals(8, c.headDim());
    assertEquals(32, c.qDim());
    assertTrue(c.tieWordEmbeddings());
    // newer configs: rope_parameters, with rope_theta inside
    ObjectNode l3b = base("llama");
    l3b.putObject("rope_parameters").put("rope_type", "llama3").put("rope_theta", 500000.0).put("factor", 8.0)
        .put("low_freq_factor", 1.0).put("high_freq_factor", 4.0).put("original_max_position_embeddings", 8192);
    LlamaConfig c2 = LlamaConfig.fromJson(l3b);
    assertEquals(500000.0, c2.ropeTheta());
    assertEquals(RopeScaling.llama31(), c2.ropeScaling());
    assertTrue(LlamaConfig.fromJson(base("qwen2").put("use_sliding_window", false).put("sliding_window", 32))
        .qkvBias());
    assertEquals(0, LlamaConfig.fromJson(base("qwen2").put("sliding_window", 32)).slidingWindow());
    assertTrue(LlamaConfig.fromJson(base("qwen3").put("head_dim", 6)).qkNorm());
    assertEquals(7, LlamaConfig.fromJson(base("mistral").put("sliding_window", 7)).slidingWindow());
    assertEquals(0, LlamaConfig.fromJson(base("mistral").putNull("sliding_window")).slidingWindow());
    assertNull(LlamaConfig.fromJson(base("llama").putNull("rope_scaling")).ropeScaling());
    // the config a family writes reads back as the same config
    for (String fam : new String[] {"llama", "llama3", "qwen2", "qwen3", "mistral"}) {
      LlamaConfig f = LlamaConfig.family(fam, 50, 16, 1, 4, 2, 24, fam.equals("qwen3") ? 6 : 0, 1e4, true, 64,
          fam.equals("mistral") ? 5 : 0);
      assertEquals(f, LlamaConfig.fromJson(f.toJson()), fam);
    }
  }

  @Test
  void refusesWhatIsNotImplementedNamingKeyAndValue(@TempDir Path tmp) throws Exception {
    Map<String, ObjectNode> cases = new LinkedHashMap<>();
    cases.put("model_type = \"gemma\"", base("gemma"));
    cases.put("model_type = \"phi3\"", base("phi3"));
    for (String t : new String[] {"yarn", "linear", "dynamic", "longrope"}) {
      ObjectNode n = base("llama");
      n.putObject("rope_scaling").put("rope_type", t).put("factor", 2.0);
      cases.put("rope_scaling.rope_type = \"" + t + "\"", n);
    }
    ObjectNode old = base("llama");
    old.putObject("rope_scaling").put("type", "linear").put("factor", 2.0);
    cases.put("rope_scaling.type = \"linear\"", old);
    ObjectNode params = base("qwen3");
    params.putObject("rope_parameters").put("rope_type", "yarn").put("factor", 4.0);
    cases.put("rope_parameters.rope_type = \"yarn\"", params);
    ObjectNode partial = base("llama");
    partial.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0);
    cases.put("'rope_scaling.low_freq_factor'", partial);
    cases.put("attention_bias = true", base("llama").put("attention_bias", true));
    cases.put("attention_bias = true (only false is supported for qwen3)", base("qwen3").put("attention_bias", true));
    cases.put("mlp_bias = true", base("llama").put("mlp_bias", true));
    cases.put("hidden_act = \"gelu\"", base("llama").put("hidden_act", "gelu"));
    cases.put("use_sliding_window = true", base("qwen2").put("use_sliding_window", true));
    cases.put("partial_rotary_factor = 0.5", base("llama").put("partial_rotary_factor", 0.5));
    cases.put("sliding_window = 0", base("mistral").put("sliding_window", 0));
    ObjectNode lt = base("qwen3");
    lt.putArray("layer_types").add("sliding_attention");
    cases.put("layer_types", lt);
    cases.put("head_dim 7", base("qwen3").put("head_dim", 7));
    for (var e : cases.entrySet()) {
      String msg = refusal(e.getValue(), tmp);
      assertTrue(msg.contains(e.getKey()), "expected '" + e.getKey() + "' in: " + msg);
    }
  }

  static LlamaConfig tiny(String family) {
    return LlamaConfig.family(family, 40, 16, 1, 4, 2, 24, family.equals("qwen3") ? 6 : 0, 1e4,
        family.equals("llama3"), 64, family.equals("mistral") ? 4 : 0);
  }

  @Test
  void checkpointsRoundTripAndMismatchesAreNamed(@TempDir Path tmp) throws Exception {
    for (String fam : new String[] {"llama3", "qwen2", "qwen3", "mistral"}) {
      LlamaConfig c = tiny(fam);
      LlamaWeights w = RandomLlama.create(c, 3, 0.2, 0.1, DataType.FLOAT);
      Path dir = tmp.resolve(fam);
      HfCheckpoint.write(dir, c, HfCheckpoint.tensors(w), "F32", 1L << 30, null);
      LlamaWeights back = HfCheckpoint.load(dir, DataType.FLOAT);
      assertEquals(c, back.config);
      Batch b = Batch.of(java.util.List.of(new int[] {1, 5, 7, 9, 11, 3}), new int[] {1}, 6, 0);
      assertEquals(new LlamaModel(w, null, DataType.FLOAT).sequenceLogProbs(b)[0],
          new LlamaModel(back, null, DataType.FLOAT).sequenceLogProbs(b)[0], 1e-5, fam);
      // NF4 keeps the biases and norms
      assertEquals(back.layers[0].qNorm(), back.quantizeNf4(false).layers[0].qNorm());
      assertEquals(back.layers[0].qBias(), back.quantizeNf4(false).layers[0].qBias());
      assertEquals(HfCheckpoint.shapes(c).keySet(), HfCheckpoint.tensors(w).keySet());
    }
    // qwen3 without q_norm weights
    Map<String, Safetensors.Tensor> t = HfCheckpoint.tensors(RandomLlama.create(tiny("qwen3"), 3, 0.2, 0, DataType.FLOAT));
    t.remove("model.layers.0.self_attn.q_norm.weight");
    HfCheckpoint.write(tmp.resolve("noqn"), tiny("qwen3"), t, "F32", 1L << 30, null);
    var e = assertThrows(java.io.IOException.class, () -> HfCheckpoint.load(tmp.resolve("noqn"), DataType.FLOAT));
    assertTrue(e.getMessage().contains("noqn") && e.getMessage().contains("'model.layers.0.self_attn.q_norm.weight'"),
        e.getMessage());
    // llama config over a qwen2 checkpoint: its biases would be dropped silently
    Map<String, Safetensors.Tensor> q2 = HfCheckpoint.tensors(RandomLlama.create(tiny("qwen2"), 3, 0.2, 0, DataType.FLOAT));
    HfCheckpoint.write(tmp.resolve("mislabeled"), tiny("llama"), q2, "F32", 1L << 30, null);
    e = assertThrows(java.io.IOException.class, () -> HfCheckpoint.load(tmp.resolve("mislabeled"), DataType.FLOAT));
    assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("q_proj.bias"), e.getMessage());
    // tied config with an lm_head of another shape
    LlamaConfig tied = tiny("llama3");
    Map<String, Safetensors.Tensor> tt = HfCheckpoint.tensors(RandomLlama.create(tied, 3, 0.2, 0, DataType.FLOAT));
    tt.put("lm_head.weight", new Safetensors.Tensor(new long[] {41, 16}, new float[41 * 16]));
    HfCheckpoint.write(tmp.resolve("badhead"), tied, tt, "F32", 1L << 30, null);
    e = assertThrows(java.io.IOException.class, () -> HfCheckpoint.load(tmp.resolve("badhead"), DataType.FLOAT));
    assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("'lm_head.weight'")
        && e.getMessage().contains("[41, 16]") && e.getMessage().contains("tie_word_embeddings"), e.getMessage());
  }

  @Test
  void initModelMakesEachFamily(@TempDir Path tmp) throws Exception {
    for (String fam : new String[] {"llama", "llama3", "qwen2", "qwen3", "mistral"}) {
      Path out = tmp.resolve(fam);
      assertEquals(0, Main.dispatch(new String[] {"init-model", "--output", out.toString(), "--family", fam,
          "--vocab", "64", "--dim", "32", "--layers", "1", "--heads", "4", "--kv-heads", "2", "--ffn", "48",
          "--head-dim", fam.equals("qwen3") ? "16" : "8"}, Main.COMMANDS));
      LlamaConfig c = HfCheckpoint.load(out, DataType.FLOAT).config;
      assertEquals(fam.startsWith("llama") ? "llama" : fam, c.modelType());
      assertEquals(fam.equals("llama3"), c.ropeScaling() != null);
      assertEquals(fam.equals("mistral") ? 4096 : 0, c.slidingWindow());
      assertEquals(fam.equals("qwen3") ? 16 : 8, c.headDim());
    }
  }
}
