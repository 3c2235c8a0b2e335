package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdapterModule;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.DoraModule;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.io.Safetensors;
import ai.lathe.model.nn.DenseLinear;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** DoRA: gradients, initialisation, merge/unmerge, PEFT format; its scoring vs PyTorch is in ScoreAgainstTorchTest. */
class DoraTest {
  static LoraConfig dora(List<String> targets, double dropout, Map<String, Integer> ranks) {
    return new LoraConfig(3, 6.0, targets, dropout, false, true, ranks, Map.of());
  }

  /** DoRA adapters moved away from their initialisation (A, B, m all random). */
  static AdapterSet randomDora(LlamaWeights w, LoraConfig lc, long seed) {
    AdapterSet a = AdapterSet.init(w, lc, seed, DataType.DOUBLE);
    Random r = new Random(seed);
    for (Param p : a.params()) {
      for (long i = 0; i < p.value().length(); i++) {
        double v = p.value().getDouble(i);
        p.value().putScalar(i, p.name().endsWith("magnitude_vector") ? v * (1 + 0.3 * r.nextGaussian())
            : 0.3 * r.nextGaussian());
      }
    }
    return a;
  }

  static void fixNorms(LlamaWeights w, AdapterSet a, boolean fix) {
    for (int l = 0; l < a.numLayers(); l++) {
      for (String m : LlamaWeights.MODULES) {
        if (a.module(l, m) instanceof DoraModule d) {
          d.fixNorms(null);
          d.fixNorms(fix ? d.rowNorms(w.layers[l].module(m)) : null);
        }
      }
    }
  }

  /** Σ w·nll, with dropout (fixed seed, so fixed masks) when training. */
  static double loss(LlamaModel m, Batch b, double[] w, boolean training) {
    return training ? GradientCheckTest.trainLoss(m, b, w) : GradientCheckTest.loss(m, b, w);
  }

  void checkGradients(double dropout) {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 17, 0.3, 0.2, DataType.DOUBLE);
    AdapterSet a = randomDora(w, dora(List.of("all-linear"), dropout, Map.of("down_proj", 2)), 5);
    LlamaModel m = new LlamaModel(w, a, DataType.DOUBLE);
    Batch b = TinyModels.randomBatch(c, 2, 8, 3);
    boolean training = dropout > 0;
    double[] weights = new double[m.forward(b, training, 42).length];
    Random rng = new Random(1);
    for (int i = 0; i < weights.length; i++) {
      weights[i] = 0.5 + rng.nextDouble();
    }
    a.zeroGrads();
    m.forward(b, training, 42);
    m.backward(weights);
    // the norms are constants in backward (PEFT detaches them): finite differences hold them fixed
    fixNorms(w, a, true);
    double h = 1e-5;
    int checked = 0;
    double worst = 0;
    for (Param p : a.params()) {
      INDArray v = p.value();
      INDArray g = p.grad().dup();
      for (long i = 0; i < v.length(); i += 2) {
        double o = v.getDouble(i);
        v.putScalar(i, o + h);
        double lp = loss(m, b, weights, training);
        v.putScalar(i, o - h);
        double lm = loss(m, b, weights, training);
        v.putScalar(i, o);
        double fd = (lp - lm) / (2 * h);
        double an = g.getDouble(i);
        double err = Math.abs(fd - an) / Math.max(1e-6, Math.abs(fd) + Math.abs(an));
        assertTrue(err < 1e-4 || Math.abs(fd - an) < 1e-9, p.name() + "[" + i + "]: " + an + " vs " + fd);
        worst = Math.max(worst, Math.abs(fd - an) < 1e-9 ? 0 : err);
        checked++;
      }
    }
    fixNorms(w, a, false);
    assertTrue(checked > 500, "checked " + checked);
    System.out.printf("DoRA (dropout %.2f): %d gradient entries, worst relative error %.2e%n", dropout, checked, worst);
  }

  @Test
  void gradientsMatchFiniteDifferencesWithTheNormHeldConstant() {
    checkGradients(0.0);
  }

  @Test
  void gradientsWithDropoutMatchFiniteDifferences() {
    checkGradients(0.3);
  }

  @Test
  void initialisationIsTheBaseAndMergeUnmergeAreExact() {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 18, 0.3, 0.2, DataType.DOUBLE);
    Batch b = TinyModels.randomBatch(c, 2, 9, 4);
    double[] base = new LlamaModel(w, null, DataType.DOUBLE).sequenceLogProbs(b);
    // fresh DoRA: B = 0 and m = ‖W_j‖, so the model is the base
    AdapterSet fresh = AdapterSet.init(w, dora(List.of("all-linear"), 0, Map.of()), 3, DataType.DOUBLE);
    DoraModule d0 = (DoraModule) fresh.module(1, "up_proj");
    double[] wsq = w.layers[1].up().rowSquaredNorms();
    for (int j = 0; j < wsq.length; j++) {
      assertEquals(Math.sqrt(wsq[j]), d0.magnitude().getDouble(j), 1e-12);
    }
    double[] f = new LlamaModel(w, fresh, DataType.DOUBLE).sequenceLogProbs(b);
    for (int i = 0; i < f.length; i++) {
      assertEquals(base[i], f[i], 1e-10);
    }
    // merged weights W' = m/‖W + sBA‖ ⊙ (W + sBA) reproduce the adapter; unmerge restores W
    AdapterSet a = randomDora(w, dora(List.of("q_proj", "o_proj", "down_proj"), 0, Map.of()), 9);
    double[] adapted = new LlamaModel(w, a, DataType.DOUBLE).sequenceLogProbs(b);
    LlamaWeights.Layer[] merged = new LlamaWeights.Layer[w.layers.length];
    double worstUnmerge = 0;
    for (int l = 0; l < merged.length; l++) {
      LlamaWeights.Layer x = w.layers[l];
      var mods = new java.util.LinkedHashMap<String, ai.lathe.model.nn.FrozenLinear>();
      for (String m : LlamaWeights.MODULES) {
        AdapterModule am = a.module(l, m);
        if (am instanceof DoraModule d) {
          double[] n = d.rowNorms(x.module(m));
          INDArray wm = d.mergeInto(x.module(m));
          INDArray back = d.unmerge(wm, n);
          worstUnmerge = Math.max(worstUnmerge, back.sub(x.module(m).dense()).amaxNumber().doubleValue());
          mods.put(m, new DenseLinear(wm));
        } else {
          mods.put(m, x.module(m));
        }
      }
      merged[l] = new LlamaWeights.Layer(x.attnNorm(), mods.get("q_proj"), mods.get("k_proj"), mods.get("v_proj"),
          mods.get("o_proj"), x.mlpNorm(), mods.get("gate_proj"), mods.get("up_proj"), mods.get("down_proj"));
    }
    double[] viaMerge = new LlamaModel(new LlamaWeights(c, w.embed, merged, w.finalNorm, w.lmHead), null,
        DataType.DOUBLE).sequenceLogProbs(b);
    for (int i = 0; i < adapted.length; i++) {
      assertEquals(adapted[i], viaMerge[i], 1e-9);
      assertTrue(Math.abs(adapted[i] - base[i]) > 1e-3, "the adapter changes the model");
    }
    assertTrue(worstUnmerge < 1e-12, "unmerge error " + worstUnmerge);
  }

  @Test
  void peftFormatRoundTripWithRankPattern(@TempDir Path tmp) throws Exception {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 19, 0.3, 0.2, DataType.FLOAT);
    LoraConfig lc = new LoraConfig(4, 8, List.of("q_proj", "v_proj", "down_proj"), 0.0, false, true,
        Map.of("layers.0.self_attn.q_proj", 2, "down_proj", 8), Map.of("v_proj", 2.0));
    AdapterSet a = AdapterSet.init(w, lc, 2, DataType.FLOAT);
    PeftAdapter.write(tmp.resolve("d"), a, "base", null);
    var cfg = new com.fasterxml.jackson.databind.ObjectMapper().readTree(tmp.resolve("d/adapter_config.json").toFile());
    assertTrue(cfg.get("use_dora").asBoolean());
    try (Safetensors st = Safetensors.open(tmp.resolve("d/adapter_model.safetensors"))) {
      assertEquals(List.of((long) c.hiddenSize()), java.util.Arrays.stream(st.entry(
          "base_model.model.model.layers.1.self_attn.q_proj.lora_magnitude_vector").shape()).boxed().toList());
    }
    AdapterSet back = PeftAdapter.read(tmp.resolve("d"), c, DataType.FLOAT);
    new LlamaModel(w, back, DataType.FLOAT); // binds the base's norms
    for (int l = 0; l < c.numLayers(); l++) {
      for (String m : lc.targetModules()) {
        assertEquals(a.module(l, m).rank(), back.module(l, m).rank(), l + " " + m);
        assertTrue(back.module(l, m) instanceof DoraModule);
      }
    }
    assertEquals(2, back.module(0, "q_proj").rank());
    assertEquals(4, back.module(1, "q_proj").rank());
    assertEquals(8, back.module(1, "down_proj").rank());
    for (int i = 0; i < a.params().size(); i++) {
      assertEquals(a.params().get(i).name(), back.params().get(i).name());
      assertEquals(0, a.params().get(i).value().sub(back.params().get(i).value()).amaxNumber().doubleValue(), 0.0);
    }
    var e = assertThrows(IllegalArgumentException.class, () -> new LoraConfig(4, 8, List.of("q_proj", "lm_head"), 0,
        false, true, Map.of(), Map.of()));
    assertTrue(e.getMessage().contains("DoRA is not supported on module 'lm_head'"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> AdapterSet.init(c, lc, 1, DataType.FLOAT));
  }
}
