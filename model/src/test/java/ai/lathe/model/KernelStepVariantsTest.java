package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdaLoraConfig;
import ai.lathe.model.adapter.AdaLoraModule;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.HostCopies;
import ai.lathe.model.nn.Kernels;
import ai.lathe.model.text.ChatTemplate.Tokens;
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
 * The step variants {@link KernelStepTest} leaves out, each the same on both kernel sets (loss,
 * every trained gradient and updated value within 1e-5) and, on the ND4J ops, with 0 host element
 * accesses and exactly the expected copies back: Qwen2's q/k/v biases, DoRA's magnitude terms,
 * AdaLoRA's orthogonality gradient, importance EMAs and rank masking, and full-parameter training
 * (norm, bias, embedding and head gradients).
 */
class KernelStepVariantsTest {
  /** Qwen2: q/k/v biases, untied head. */
  static final LlamaConfig QWEN2 = LlamaConfig.family("qwen2", 50, 32, 2, 4, 2, 48, 0, 10000, false, 64, 0);
  /** Qwen3: per-head q/k RMSNorm, tied head (its gradient lands in the embedding). */
  static final LlamaConfig QWEN3 = LlamaConfig.family("qwen3", 50, 32, 2, 4, 2, 48, 0, 10000, true, 64, 0);

  static final SftTrainer.Options OPTIONS = new SftTrainer.Options(3, 2, 32, 1e-3, 0, 4, 0.0, 0.1, 1e9, 7);

  @AfterEach
  void reset() {
    Kernels.use(null);
    Buf.counting = false;
  }

  /** A model to train and the tensors it trains. */
  record Run(LlamaModel model, List<Param> params) {}

  /** A fresh model with adapters lc (B, E, m moved off their initial values) on random weights of c. */
  static Run adapters(LlamaConfig c, LoraConfig lc) {
    var w = RandomLlama.create(c, 1, 0.1, 0.05, DataType.FLOAT);
    AdapterSet a = AdapterSet.init(w, lc, 3, DataType.FLOAT);
    jitter(a.params());
    return new Run(new LlamaModel(w, a, DataType.FLOAT), a.params());
  }

  /** A fresh model of c trained in full (every tensor). */
  static Run full(LlamaConfig c) {
    var w = RandomLlama.create(c, 1, 0.1, 0.05, DataType.FLOAT);
    LlamaModel m = new LlamaModel(w, null, DataType.FLOAT);
    TrainableWeights t = TrainableWeights.of(w, List.of());
    m.setTrainable(t);
    return new Run(m, t.params());
  }

  /** Zero-initialised factors (LoRA's B, AdaLoRA's E) get values, so every gradient is non-trivial. */
  static void jitter(List<Param> params) {
    Random r = new Random(5);
    for (Param p : params) {
      for (long i = 0; i < p.value().length(); i++) {
        p.value().putScalar(i, p.value().getDouble(i) + 0.05 * r.nextGaussian());
      }
    }
  }

  /**
   * Runs step on a fresh run per kernel set and holds them together; on the ND4J ops the step must
   * make 0 host element accesses and exactly copiesBack copies of elementsBack elements. Returns
   * the two runs (java, nd4j) for further checks.
   */
  static List<Run> sameStep(java.util.function.Supplier<Run> make, Function<LlamaModel, Double> step,
      long copiesBack, long elementsBack) {
    List<Run> runs = new ArrayList<>();
    List<Double> losses = new ArrayList<>();
    for (Kernels k : Kernels.values()) {
      Kernels.use(k);
      Run run = make.get();
      Buf.ACCESSES.set(0);
      HostCopies.reset();
      Buf.counting = k == Kernels.ND4J;
      losses.add(step.apply(run.model()));
      Buf.counting = false;
      if (k == Kernels.ND4J) {
        assertEquals(0, Buf.ACCESSES.get(), "host element accesses in a step on the ND4J ops");
        assertEquals(copiesBack, HostCopies.COPIES.get(), "copies back to the host in a step");
        assertEquals(elementsBack, HostCopies.ELEMENTS.get(), "elements copied back in a step");
      }
      runs.add(run);
    }
    assertEquals(losses.get(0), losses.get(1), 1e-5, "loss");
    double[][] g = {KernelStepTest.flat(runs.get(0).params(), true), KernelStepTest.flat(runs.get(1).params(), true)};
    double[][] v = {KernelStepTest.flat(runs.get(0).params(), false),
        KernelStepTest.flat(runs.get(1).params(), false)};
    double worstG = 0;
    double largestG = 0;
    double worstV = 0;
    for (int i = 0; i < g[0].length; i++) {
      worstG = Math.max(worstG, Math.abs(g[0][i] - g[1][i]));
      largestG = Math.max(largestG, Math.abs(g[0][i]));
      worstV = Math.max(worstV, Math.abs(v[0][i] - v[1][i]));
    }
    assertTrue(largestG > 1e-4, "gradients are non-trivial: " + largestG);
    assertTrue(worstG <= 1e-5, "gradients differ by " + worstG + " (largest " + largestG + ")");
    assertTrue(worstV <= 1e-5, "updated values differ by " + worstV);
    System.out.printf("java vs nd4j kernels: loss %.8f vs %.8f, worst gradient difference %.2e of %.2e, "
        + "worst value difference %.2e%n", losses.get(0), losses.get(1), worstG, largestG, worstV);
    return runs;
  }

  /** Target tokens of the two micro-batches of {@link KernelStepTest#sftData}. */
  static long targets(List<Tokens> d) {
    return SftTrainer.batch(d.subList(0, 3), 32).targetCount() + SftTrainer.batch(d.subList(3, 6), 32).targetCount();
  }

  static double sftStep(LlamaModel m, List<Tokens> d) {
    return new SftTrainer(m, OPTIONS).step(List.of(d.subList(0, 3), d.subList(3, 6))).loss();
  }

  /** Copies back in an SFT step: each micro-batch's per-target NLL, then the gradient norm. */
  @Test
  void aQwen2LoraStepWithBiasesIsTheSameOnBothKernels() {
    List<Tokens> d = KernelStepTest.sftData(1);
    LoraConfig lc = new LoraConfig(4, 8, List.of("all-linear"), 0.1, false, false, Map.of(), Map.of());
    sameStep(() -> adapters(QWEN2, lc), m -> sftStep(m, d), 3, targets(d) + 1);
  }

  /** DoRA (with dropout): the row norms, c = m/n and the magnitude gradient stay on the device. */
  @Test
  void aDoraStepIsTheSameOnBothKernels() {
    List<Tokens> d = KernelStepTest.sftData(2);
    LoraConfig lc = new LoraConfig(4, 8, List.of("all-linear"), 0.1, false, true, Map.of(), Map.of());
    sameStep(() -> adapters(QWEN2, lc), m -> sftStep(m, d), 3, targets(d) + 1);
  }

  /**
   * Two AdaLoRA steps (tinit 0, deltaT 1): step 0 adds the orthogonality gradient and updates the
   * importance EMAs on the device; step 1 also masks to the cubic budget, which reads every rank's
   * score back once (Σ init_r values: the budget's threshold is decided on the host) and sends the
   * masks host to device. Copies: 3 per step, plus that one.
   */
  @Test
  void adaLoraStepsWithARankAllocationAreTheSameOnBothKernels() {
    List<Tokens> d = KernelStepTest.sftData(3);
    LoraConfig lc = new LoraConfig(4, 6.0, List.of("all-linear"), 0.1, false, false, Map.of(), Map.of(), null,
        new AdaLoraConfig(4, 2, 0, 0, 1, 0.85, 0.85, 0.5, 20));
    int modules = QWEN2.numLayers() * 7;
    long ranks = 4L * modules;
    List<Run> runs = sameStep(() -> adapters(QWEN2, lc), m -> {
      SftTrainer t = new SftTrainer(m, OPTIONS);
      t.step(List.of(d.subList(0, 3), d.subList(3, 6)));
      return t.step(List.of(d.subList(0, 3), d.subList(3, 6))).loss();
    }, 2 * 3 + 1, 2 * (targets(d) + 1) + ranks);
    List<AdaLoraModule> java = runs.get(0).model().adapters().adaLoraModules();
    List<AdaLoraModule> nd4j = runs.get(1).model().adapters().adaLoraModules();
    int kept = 0;
    for (int i = 0; i < java.size(); i++) {
      assertArrayEquals(java.get(i).kept(), nd4j.get(i).kept(), "kept ranks of " + java.get(i).path());
      assertTrue(nd4j.get(i).decided());
      kept += nd4j.get(i).keptCount();
    }
    // budget(1) = ⌊(56 − 28)·(1 − 1/20)³ + 28⌋ = 52 of 56 ranks
    assertEquals(52, kept, "the allocator masked ranks in step 1");
  }

  /** Full training, Qwen2 (biases, untied head) and Qwen3 (head norms, tied head). */
  @Test
  void fullParameterStepsAreTheSameOnBothKernels() {
    List<Tokens> d = KernelStepTest.sftData(4);
    for (LlamaConfig c : List.of(QWEN2, QWEN3)) {
      sameStep(() -> full(c), m -> sftStep(m, d), 3, targets(d) + 1);
    }
  }

  /**
   * The finite-difference checks of the variants, in double, through the ND4J ops: full training
   * (Qwen2 biases, Qwen3 head norms and tied head), DoRA with dropout, AdaLoRA with dropout (slow
   * tier: ~10.5 minutes of small ND4J ops on 2 busy cores; passed when run here).
   */
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void finiteDifferenceChecksOfTheVariantsPassThroughTheNd4jOps() {
    Kernels.use(Kernels.ND4J);
    FullGradientTest full = new FullGradientTest();
    full.qwen2Biases();
    full.qwen3HeadNorms();
    new DoraTest().gradientsWithDropoutMatchFiniteDifferences();
    new AdaLoraTest().gradientsWithDropoutMatchFiniteDifferences();
    assertEquals(Kernels.ND4J, Kernels.current());
  }
}
