package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.HostCopies;
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
 * Whole training steps on the ND4J-op kernels equal the Java kernels' (loss, every adapter
 * gradient and every updated adapter weight within 1e-5), make no host element access and only
 * the expected copies back (each forward's per-target NLL, the gradient norm), and the
 * finite-difference gradient checks pass through the ND4J ops.
 */
class KernelStepTest {
  // GQA, packed-capable, untied head; qwen3-style head norms exercise RMSNorm on q and k too
  static final LlamaConfig C = new LlamaConfig("llama", 50, 32, 2, 4, 2, 48, 1e-5, 10000, false, 64, 1, 2);

  @AfterEach
  void reset() {
    Kernels.use(null);
    Buf.counting = false;
  }

  /**
   * Loss, gradients and updated weights of one step, each kernel set on a fresh identical model;
   * on the ND4J ops the step must make 0 host element accesses and exactly copiesBack copies of
   * elementsBack elements back to the host.
   */
  static void sameStep(Function<LlamaModel, Double> step, long copiesBack, long elementsBack) {
    List<double[]> grads = new ArrayList<>();
    List<double[]> weights = new ArrayList<>();
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
      LlamaModel model = new LlamaModel(w, a, DataType.FLOAT);
      Buf.ACCESSES.set(0);
      HostCopies.reset();
      Buf.counting = k == Kernels.ND4J;
      losses.add(step.apply(model));
      Buf.counting = false;
      if (k == Kernels.ND4J) {
        assertEquals(0, Buf.ACCESSES.get(), "host element accesses in a step on the ND4J ops");
        assertEquals(copiesBack, HostCopies.COPIES.get(), "copies back to the host in a step");
        assertEquals(elementsBack, HostCopies.ELEMENTS.get(), "elements copied back in a step");
      }
      grads.add(flat(a.params(), true));
      weights.add(flat(a.params(), false));
    }
    assertEquals(losses.get(0), losses.get(1), 1e-5, "loss");
    double worstW = 0;
    for (int i = 0; i < weights.get(0).length; i++) {
      worstW = Math.max(worstW, Math.abs(weights.get(0)[i] - weights.get(1)[i]));
    }
    assertTrue(worstW <= 1e-5, "updated weights differ by " + worstW);
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

  /** Every parameter's gradient (grad) or value, flattened in order. */
  static double[] flat(List<Param> params, boolean grad) {
    List<Double> out = new ArrayList<>();
    for (Param p : params) {
      for (double x : (grad ? p.grad() : p.value()).castTo(DataType.DOUBLE).data().asDouble()) {
        out.add(x);
      }
    }
    return out.stream().mapToDouble(Double::doubleValue).toArray();
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
    // back to the host: each micro-batch's per-target NLL, then the gradient norm (one scalar)
    long targets = SftTrainer.batch(d.subList(0, 3), 32).targetCount() + SftTrainer.batch(d.subList(3, 6), 32)
        .targetCount();
    assertTrue(targets > 10);
    sameStep(m -> new SftTrainer(m, new SftTrainer.Options(3, 2, 32, 1e-3, 0, 4, 0.0, 0.1, 1e9, 7))
        .step(List.of(d.subList(0, 3), d.subList(3, 6))).loss(), 3, targets + 1);
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
    long targets = 0;
    for (List<DpoTrainer.Pair> mb : List.of(pairs.subList(0, 2), pairs.subList(2, 4))) {
      List<int[]> ids = new ArrayList<>();
      for (DpoTrainer.Pair p : mb) {
        ids.add(p.chosen());
      }
      for (DpoTrainer.Pair p : mb) {
        ids.add(p.rejected());
      }
      int[] starts = {mb.get(0).chosenStart(), mb.get(1).chosenStart(), mb.get(0).rejectedStart(),
          mb.get(1).rejectedStart()};
      targets += ai.lathe.model.Batch.of(ids, starts, 32, 0).targetCount();
    }
    assertTrue(targets > 10);
    // back to the host: each micro-batch's per-target NLL (summed to sequence log-probs there), the norm
    long expected = targets + 1;
    sameStep(m -> new DpoTrainer(m, new SftTrainer.Options(2, 2, 32, 1e-3, 0, 4, 0.0, 0.1, 1e9, 7), "sigmoid", 0.1,
        0.0).step(List.of(pairs.subList(0, 2), pairs.subList(2, 4))).metrics().mean("loss"), 3, expected);
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
