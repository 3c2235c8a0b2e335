package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.Param;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * train.mode full: every weight's gradient (embeddings, every norm, every projection, the head,
 * Qwen2's biases, Qwen3's head norms) against central finite differences in double, for each
 * family, tied and untied; freezing by name pattern and its errors.
 */
class FullGradientTest {

  /** The kind of a Hugging Face tensor name, with the layer index dropped. */
  static String kind(String name) {
    return name.replaceAll("layers\\.\\d+\\.", "");
  }

  /**
   * Checks every stride-th entry (and each tensor's first and last) of every trainable weight;
   * returns the kinds checked.
   */
  static Set<String> check(LlamaModel m, Batch b, int stride) {
    double[] weights = new double[m.forward(b, false, 0).length];
    Random rng = new Random(3);
    for (int i = 0; i < weights.length; i++) {
      weights[i] = 0.5 + rng.nextDouble();
    }
    m.trainable().zeroGrads();
    m.forward(b, false, 0);
    m.backward(weights);
    double h = 1e-5;
    Set<String> kinds = new HashSet<>();
    int nonzero = 0;
    for (Param p : m.params()) {
      INDArray v = p.value();
      INDArray g = p.grad().dup();
      java.util.TreeSet<Long> idx = new java.util.TreeSet<>();
      for (long i = 0; i < v.length(); i += stride) {
        idx.add(i);
      }
      idx.add(v.length() - 1);
      for (long i : idx) {
        double orig = v.getDouble(i);
        v.putScalar(i, orig + h);
        double lp = GradientCheckTest.loss(m, b, weights);
        v.putScalar(i, orig - h);
        double lm = GradientCheckTest.loss(m, b, weights);
        v.putScalar(i, orig);
        double fd = (lp - lm) / (2 * h);
        double an = g.getDouble(i);
        assertTrue(GradientCheckTest.relErr(fd, an) < 1e-4 || Math.abs(fd - an) < 1e-9,
            p.name() + "[" + i + "]: analytic " + an + " vs finite difference " + fd);
        nonzero += Math.abs(an) > 1e-8 ? 1 : 0;
      }
      kinds.add(kind(p.name()));
    }
    assertTrue(nonzero > 50, "too few non-zero gradients to mean anything: " + nonzero);
    return kinds;
  }

  static LlamaModel full(LlamaConfig c, long seed, List<String> freeze) {
    LlamaWeights w = RandomLlama.create(c, seed, 0.3, 0.2, DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, null, DataType.DOUBLE);
    m.setTrainable(TrainableWeights.of(w, freeze));
    return m;
  }

  static final List<String> LLAMA_KINDS = List.of("model.embed_tokens.weight", "model.input_layernorm.weight",
      "model.post_attention_layernorm.weight", "model.self_attn.q_proj.weight", "model.self_attn.k_proj.weight",
      "model.self_attn.v_proj.weight", "model.self_attn.o_proj.weight", "model.mlp.gate_proj.weight",
      "model.mlp.up_proj.weight", "model.mlp.down_proj.weight", "model.norm.weight");

  @Test
  void llamaUntiedEveryWeight() {
    LlamaConfig c = TinyModels.gqaUntied();
    Set<String> kinds = check(full(c, 7, List.of()), TinyModels.randomBatch(c, 3, 9, 5), 2);
    assertTrue(kinds.containsAll(LLAMA_KINDS) && kinds.contains("lm_head.weight"), kinds.toString());
  }

  @Test
  void llamaTiedHeadAddsIntoTheEmbedding() {
    LlamaConfig c = FamilyGradientTest.llama3Tied();
    LlamaModel m = full(c, 11, List.of());
    Set<String> kinds = check(m, TinyModels.randomBatch(c, 2, 8, 9), 5);
    assertTrue(kinds.containsAll(LLAMA_KINDS), kinds.toString());
    assertFalse(kinds.contains("lm_head.weight"), "tied: no separate head");
    // a token never in the input still gets a gradient through the head
    Batch b = TinyModels.randomBatch(c, 1, 4, 3);
    Set<Integer> seen = new HashSet<>();
    for (int t : b.tokens()) {
      seen.add(t);
    }
    int unseen = 0;
    while (seen.contains(unseen)) {
      unseen++;
    }
    double[] nll = m.forward(b, false, 0);
    double[] wts = new double[nll.length];
    java.util.Arrays.fill(wts, 1.0);
    m.trainable().zeroGrads();
    m.forward(b, false, 0);
    m.backward(wts);
    INDArray ge = m.params().get(0).grad();
    assertEquals("model.embed_tokens.weight", m.params().get(0).name());
    assertTrue(Math.abs(ge.getDouble((long) unseen * c.hiddenSize())) > 1e-8, "head gradient reaches embed row");
  }

  @Test
  void qwen2Biases() {
    LlamaConfig c = FamilyGradientTest.qwen2();
    Set<String> kinds = check(full(c, 7, List.of()), TinyModels.randomBatch(c, 2, 8, 5), 5);
    assertTrue(kinds.containsAll(List.of("model.self_attn.q_proj.bias", "model.self_attn.k_proj.bias",
        "model.self_attn.v_proj.bias", "lm_head.weight")), kinds.toString());
  }

  @Test
  void qwen3HeadNorms() {
    LlamaConfig c = FamilyGradientTest.qwen3();
    Set<String> kinds = check(full(c, 8, List.of()), TinyModels.randomBatch(c, 2, 8, 6), 5);
    assertTrue(kinds.containsAll(List.of("model.self_attn.q_norm.weight", "model.self_attn.k_norm.weight")),
        kinds.toString());
    assertTrue(kinds.containsAll(LLAMA_KINDS));
  }

  @Test
  void mistralSlidingWindow() {
    LlamaConfig c = FamilyGradientTest.mistral(3);
    Set<String> kinds = check(full(c, 10, List.of()), TinyModels.randomBatch(c, 2, 9, 8), 5);
    assertTrue(kinds.containsAll(LLAMA_KINDS), kinds.toString());
  }

  @Test
  void frozenPatternsKeepTheirWeightsOutAndTheRestExact() {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaModel m = full(c, 7, List.of("embed_tokens", "layers\\.0\\.mlp", "norm"));
    Set<String> names = new HashSet<>();
    m.params().forEach(p -> names.add(p.name()));
    assertFalse(names.contains("model.embed_tokens.weight"));
    assertFalse(names.contains("model.layers.0.mlp.up_proj.weight"));
    assertFalse(names.contains("model.norm.weight"));
    assertFalse(names.contains("model.layers.1.input_layernorm.weight"));
    assertTrue(names.contains("model.layers.1.mlp.up_proj.weight"));
    assertTrue(names.contains("lm_head.weight"));
    check(m, TinyModels.randomBatch(c, 2, 7, 5), 7);
  }

  @Test
  void badFreezeAndQuantisedBasesAreClearErrors() {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 7, 0.3, 0.2, DataType.DOUBLE);
    var e = assertThrows(IllegalArgumentException.class, () -> TrainableWeights.of(w, List.of("embed_token$")));
    assertTrue(e.getMessage().contains("train.freeze: 'embed_token$' matches no tensor"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> TrainableWeights.of(w, List.of("(")));
    assertTrue(e.getMessage().contains("not a valid pattern"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> TrainableWeights.of(w, List.of(".")));
    assertTrue(e.getMessage().contains("nothing to train"), e.getMessage());
    LlamaWeights f32 = RandomLlama.create(c, 7, 0.3, 0.2, DataType.FLOAT);
    LlamaWeights nf4 = f32.quantizeNf4(false);
    e = assertThrows(IllegalArgumentException.class, () -> TrainableWeights.of(nf4, List.of()));
    assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_proj.weight is held as Nf4Linear")
        && e.getMessage().contains("cannot be trained in full"), e.getMessage());
  }
}
