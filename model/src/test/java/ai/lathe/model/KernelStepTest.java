package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.Kernels;
import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.SftTrainer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Whole training steps on the ND4J-op kernels equal the Java kernels' (loss and every adapter
 * gradient within 1e-5), and the finite-difference gradient checks pass through the ND4J ops.
 */
class KernelStepTest {
  // GQA, packed-capable, untied head; qwen3-style head norms exercise RMSNorm on q and k too
  static final LlamaConfig C = new LlamaConfig("llama", 50, 32, 2, 4, 2, 48, 1e-5, 10000, false, 64, 1, 2);

  @AfterEach
  void reset() {
    Kernels.use(null);
  }

  /** Loss and gradients of one step, each kernel set on a fresh identical model. */
  static void sameStep(Function<LlamaModel, Double> step) {
    List<double[]> grads = new ArrayList<>();
    List<Double> losses = new ArrayList<>();
    for (Kernels k : Kernels.values()) {
      Kernels.use(k);
      var w = RandomLlama.create(C, 1, 0.1, 0.05, DataType.FLOAT);
      AdapterSet a = AdapterSet.init(C, new LoraConfig(4, 8, List.of("all-linear"), 0.1, false, false, Map.of(),
          Map.of()), 3, DataType.FLOAT);
      // B starts at zero: give it values so that every gradient is non-trivial
      Random r = new Random(5);
      for (Param p : a.params()) {
        for (long i = 0; i < p.value().length(); i++) {
          p.value().putScalar(i, p.value().getDouble(i) + 0.05 * r.nextGaussian());
        }
      }
      losses.add(step.apply(new LlamaModel(w, a, DataType.FLOAT)));
      List<Double> g = new ArrayList<>();
      for (Param p : a.params()) {
        for (double x : p.grad().castTo(DataType.DOUBLE).data().asDouble()) {
          g.add(x);
        }
      }
      grads.add(g.stream().mapToDouble(Double::doubleValue).toArray());
    }
    assertEquals(losses.get(0), losses.get(1), 1e-5, "loss");
    double worst = 0;
    double norm = 0;
    for (int i = 0; i < grads.get(0).length; i++) {
      worst = Math.max(worst, Math.abs(grads.get(0)[i] - grads.get(1)[i]));
      norm = Math.max(norm, Math.abs(grads.get(0)[i]));
    }
    assertTrue(norm > 1e-4, "gradients are non-trivial: " + norm);
    assertTrue(worst <= 1e-5, "gradients differ by " + worst + " (largest " + norm + ")");
    System.out.printf("java vs nd4j kernels: loss %.8f vs %.8f, worst gradient difference %.2e of %.2e%n",
        losses.get(0), losses.get(1), worst, norm);
  }

  static List<Tokens> sftData(long seed) {
    Random r = new Random(seed);
    List<Tokens> out = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      int n = 6 + r.nextInt(10);
      int[] ids = r.ints(n, 1, 50).toArray();
      boolean[] train = new boolean[n];
      for (int t = n / 2; t < n; t++) {
        train[t] = true;
      }
      // every third example packed from two (positions restart), exercising the packed masks
      int[] pos = null;
      if (i % 3 == 0) {
        pos = new int[n];
        for (int t = 0; t < n; t++) {
          pos[t] = t < n / 3 ? t : t - n / 3;
        }
      }
      out.add(new Tokens(ids, train, pos));
    }
    return out;
  }

  @Test
  void anSftStepIsTheSameOnBothKernels() {
    List<Tokens> d = sftData(1);
    sameStep(m -> new SftTrainer(m, new SftTrainer.Options(3, 2, 32, 1e-3, 0, 4, 0.0, 0.0, 1e9, 7))
        .step(List.of(d.subList(0, 3), d.subList(3, 6))).loss());
  }

  @Test
  void aDpoStepIsTheSameOnBothKernels() {
    Random r = new Random(2);
    List<DpoTrainer.Pair> pairs = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      int[] prompt = r.ints(3 + r.nextInt(4), 1, 50).toArray();
      int[] c = java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt), r.ints(2 + r.nextInt(5), 1, 50))
          .toArray();
      int[] j = java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt), r.ints(2 + r.nextInt(5), 1, 50))
          .toArray();
      pairs.add(new DpoTrainer.Pair(c, prompt.length, j, prompt.length, -20 - i, -21 + i));
    }
    sameStep(m -> new DpoTrainer(m, new SftTrainer.Options(2, 2, 32, 1e-3, 0, 4, 0.0, 0.0, 1e9, 7), "sigmoid", 0.1,
        0.0).step(List.of(pairs.subList(0, 2), pairs.subList(2, 4))).metrics().mean("loss"));
  }

  /**
   * Packed positions, qwen3 head norms, a sliding window: the finite-difference checks through the
   * ND4J ops (slow tier: ~11 minutes of small ND4J ops on 2 busy cores; passed when run here).
   */
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void finiteDifferenceChecksPassThroughTheNd4jOps() throws Exception {
    Kernels.use(Kernels.ND4J);
    new GradientCheckTest().gradientsOfAPackedBatch();
    FamilyGradientTest f = new FamilyGradientTest();
    f.qwen3HeadNormsWithIndependentHeadDim();
    f.mistralSlidingWindowPaddedAndPacked();
    assertEquals(Kernels.ND4J, Kernels.current());
  }

  /** Every LoRA gradient of the GQA model (928 entries; ~9 minutes through ND4J ops on 2 busy cores). */
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void everyLoraGradientThroughTheNd4jOps() {
    Kernels.use(Kernels.ND4J);
    new GradientCheckTest().everyLoraGradientMatchesFiniteDifferences();
  }
}
