package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.Param;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Finite-difference gradient checks in double through each family's own paths: Qwen2's q/k/v
 * biases under LoRA, Qwen3's per-head q/k norms with head_dim ≠ hidden/heads, Mistral's sliding
 * window (padded and packed), Llama 3's rope scaling with an explicit head_dim and a tied head.
 */
class FamilyGradientTest {

  static LlamaConfig qwen2() {
    return LlamaConfig.family("qwen2", 37, 16, 2, 4, 2, 24, 0, 1000000.0, false, 64, 0);
  }

  static LlamaConfig qwen3() {
    return LlamaConfig.family("qwen3", 37, 16, 2, 4, 2, 24, 6, 1000000.0, false, 64, 0);
  }

  static LlamaConfig mistral(int window) {
    return LlamaConfig.family("mistral", 37, 16, 2, 4, 2, 24, 0, 10000.0, false, 64, window);
  }

  /** head_dim 8 with theta 500000 puts one frequency in each band of the llama3 scaling. */
  static LlamaConfig llama3Tied() {
    return new LlamaConfig("llama", 37, 16, 2, 4, 2, 24, 1e-5, 500000.0, true, 64, 1, 2, 8,
        new RopeScaling(8.0, 1.0, 4.0, 8192), 0);
  }

  /** Checks every stride-th entry of every adapter parameter; returns how many were checked. */
  static int checkAdapterGradients(LlamaModel m, AdapterSet a, Batch b, int stride) {
    double[] weights = new double[m.forward(b, false, 0).length];
    Random rng = new Random(3);
    for (int i = 0; i < weights.length; i++) {
      weights[i] = 0.5 + rng.nextDouble();
    }
    a.zeroGrads();
    m.forward(b, false, 0);
    m.backward(weights);
    double h = 1e-5;
    int checked = 0;
    for (Param p : a.params()) {
      INDArray v = p.value();
      INDArray g = p.grad().dup();
      for (long i = 0; i < v.length(); i += stride) {
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
        checked++;
      }
    }
    return checked;
  }

  static LlamaModel model(LlamaConfig c, long seed, AdapterSet a) {
    return new LlamaModel(RandomLlama.create(c, seed, 0.3, 0.2, DataType.DOUBLE), a, DataType.DOUBLE);
  }

  static AdapterSet lora(LlamaConfig c, List<String> targets, long seed) {
    return TinyModels.randomAdapters(c, targets, 2, 4.0, 0.0, seed, DataType.DOUBLE);
  }

  @Test
  void qwen2LoraOnBiasedProjections() {
    LlamaConfig c = qwen2();
    AdapterSet a = lora(c, List.of("q_proj", "k_proj", "v_proj", "o_proj"), 21);
    LlamaModel m = model(c, 7, a);
    assertTrue(m.weights().layers[0].qBias() != null);
    int n = checkAdapterGradients(m, a, TinyModels.randomBatch(c, 2, 8, 5), 1);
    assertTrue(n > 400, "checked " + n);
  }

  @Test
  void qwen3HeadNormsWithIndependentHeadDim() {
    LlamaConfig c = qwen3();
    assertEquals(24, c.qDim());
    assertEquals(24, c.moduleShape("o_proj")[1]);
    AdapterSet a = lora(c, List.of("all-linear"), 22);
    LlamaModel m = model(c, 8, a);
    int n = checkAdapterGradients(m, a, TinyModels.randomBatch(c, 2, 8, 6), 2);
    assertTrue(n > 400, "checked " + n);
  }

  @Test
  void qwen3InputGradientThroughTheHeadNorms() {
    LlamaConfig c = qwen3();
    AdapterSet a = lora(c, List.of("q_proj"), 23);
    LlamaWeights w = RandomLlama.create(c, 9, 0.3, 0.2, DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, a, DataType.DOUBLE);
    Batch b = TinyModels.randomBatch(c, 2, 7, 7);
    double[] weights = new double[m.forward(b, false, 0).length];
    java.util.Arrays.fill(weights, 0.8);
    m.forward(b, false, 0);
    INDArray dx0 = m.backward(weights).dup();
    int d = c.hiddenSize();
    int tok = b.tokens()[2];
    double h = 1e-5;
    for (int j = 0; j < d; j++) {
      double an = 0;
      for (int q = 0; q < b.tokens().length; q++) {
        if (b.tokens()[q] == tok) {
          an += dx0.getDouble((long) q * d + j);
        }
      }
      int idx = tok * d + j;
      double o = w.embed.get(idx);
      w.embed.set(idx, o + h);
      double lp = GradientCheckTest.loss(m, b, weights);
      w.embed.set(idx, o - h);
      double lm = GradientCheckTest.loss(m, b, weights);
      w.embed.set(idx, o);
      double fd = (lp - lm) / (2 * h);
      assertTrue(GradientCheckTest.relErr(fd, an) < 1e-4 || Math.abs(fd - an) < 1e-9, j + ": " + an + " vs " + fd);
    }
  }

  @Test
  void mistralSlidingWindowPaddedAndPacked() {
    LlamaConfig c = mistral(3);
    AdapterSet a = lora(c, List.of("q_proj", "k_proj", "v_proj", "down_proj"), 24);
    LlamaModel m = model(c, 10, a);
    int n = checkAdapterGradients(m, a, TinyModels.randomBatch(c, 2, 9, 8), 2);
    int[] pos = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3};
    int[] ids = new int[pos.length];
    boolean[] mask = new boolean[pos.length];
    Random rng = new Random(4);
    for (int i = 0; i < ids.length; i++) {
      ids[i] = rng.nextInt(c.vocabSize());
      mask[i] = pos[i] > 0;
    }
    n += checkAdapterGradients(m, a, Batch.ofMasks(List.of(ids), List.of(mask), List.of(pos), 12, 0), 2);
    assertTrue(n > 300, "checked " + n);
  }

  @Test
  void llama3RopeScalingExplicitHeadDimTiedHead() {
    LlamaConfig c = llama3Tied();
    AdapterSet a = lora(c, List.of("all-linear"), 25);
    LlamaModel m = model(c, 11, a);
    assertTrue(m.weights().lmHead.dense() == m.weights().embed.arr, "tied head is embed_tokens");
    int n = checkAdapterGradients(m, a, TinyModels.randomBatch(c, 2, 8, 9), 2);
    assertTrue(n > 400, "checked " + n);
  }

  /** A window at least the sequence long is full attention; a window of 1 sees only itself. */
  @Test
  void slidingWindowMasksExactlyTheFarKeys() {
    Batch b = TinyModels.randomBatch(mistral(3), 2, 9, 8);
    double[] full = model(mistral(0), 10, null).sequenceLogProbs(b);
    double[] wide = model(mistral(9), 10, null).sequenceLogProbs(b);
    double[] narrow = model(mistral(3), 10, null).sequenceLogProbs(b);
    for (int i = 0; i < full.length; i++) {
      assertEquals(full[i], wide[i], 1e-12);
      assertTrue(Math.abs(full[i] - narrow[i]) > 1e-3, "a window of 3 must change row " + i);
    }
  }

  /** llama3 scaling: high frequencies kept, low ones divided by factor, the middle blended. */
  @Test
  void llama3FrequencyBands() {
    RopeScaling s = new RopeScaling(8.0, 1.0, 4.0, 8192);
    float high = 1.0f; // wavelength 2π
    float low = (float) (2 * Math.PI / 100000); // wavelength 100000 > 8192
    float mid = (float) (2 * Math.PI / 4096); // between 2048 and 8192: s = (2 − 1)/3
    assertEquals(high, s.scale(high));
    assertEquals(low / 8, s.scale(low), 1e-12);
    double sm = 1.0 / 3;
    assertEquals((1 - sm) * mid / 8 + sm * mid, s.scale(mid), 1e-9);
  }
}
