package ai.lathe.merge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Batch;
import ai.lathe.model.Config;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.LoraModule;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class AdapterMergerTest {
  static final LlamaConfig C = new LlamaConfig("llama", 50, 16, 2, 4, 2, 24, 1e-5, 10000, false, 64, 1, 2);

  static AdapterSet adapter(LoraConfig lc, long seed) {
    AdapterSet a = AdapterSet.init(C, lc, seed, DataType.FLOAT);
    Random r = new Random(seed);
    for (Param p : a.params()) {
      if (p.name().contains("lora_B")) {
        for (long i = 0; i < p.value().length(); i++) {
          p.value().putScalar(i, 0.2 * r.nextGaussian());
        }
      }
    }
    return a;
  }

  static INDArray dense(AdapterSet a, int layer, String m) {
    LoraModule mod = (LoraModule) a.module(layer, m);
    return mod == null ? null : mod.loraB().mmul(mod.loraA()).mul(mod.scale());
  }

  Path setUp(Path tmp) throws Exception {
    LlamaWeights w = RandomLlama.create(C, 1, 0.3, 0.1, DataType.FLOAT);
    HfCheckpoint.write(tmp.resolve("base"), C, HfCheckpoint.tensors(w), "F32", 1L << 30, null);
    PeftAdapter.write(tmp.resolve("en"), adapter(new LoraConfig(4, 8, List.of("q_proj", "v_proj"), 0, false, false,
        Map.of(), Map.of()), 1), "base", null);
    PeftAdapter.write(tmp.resolve("de"), adapter(new LoraConfig(2, 6, List.of("q_proj", "down_proj"), 0, true, false,
        Map.of(), Map.of()), 2), "base", null);
    return tmp;
  }

  static Config cfg(Path tmp, String method, String kind, int rank, String... extra) throws Exception {
    Path yaml = tmp.resolve("merge-" + kind + ".yaml");
    Files.writeString(yaml, "method: " + method + "\nbase_model: " + tmp.resolve("base") + "\n"
        + "parameters: {density: 1.0, sign: total, normalize: true, lambda: 1.0, seed: 0}\n"
        + "adapters:\n  - {path: " + tmp.resolve("en") + ", weight: 1.0}\n  - {path: " + tmp.resolve("de")
        + ", weight: 0.5}\n"
        + "output: {kind: " + kind + ", rank: " + rank + ", path: " + tmp.resolve("out-" + kind) + "}\n");
    return Config.load(yaml, List.of(extra));
  }

  @Test
  void fullRankLinearMergeReproducesTheDenseMerge(@TempDir Path tmp) throws Exception {
    setUp(tmp);
    AdapterMerger.Result r = AdapterMerger.run(MergeConfig.from(cfg(tmp, "linear", "adapter", 16)), tmp.resolve("base"));
    AdapterSet en = PeftAdapter.read(tmp.resolve("en"), C, DataType.FLOAT);
    AdapterSet de = PeftAdapter.read(tmp.resolve("de"), C, DataType.FLOAT);
    AdapterSet merged = PeftAdapter.read(tmp.resolve("out-adapter"), C, DataType.FLOAT);
    for (int l = 0; l < 2; l++) {
      for (String m : List.of("q_proj", "v_proj", "down_proj")) {
        INDArray e = dense(en, l, m);
        INDArray d = dense(de, l, m);
        int[] s = C.moduleShape(m);
        INDArray expect = ai.lathe.model.nn.Buf.zeros(DataType.FLOAT, s[0], s[1]).arr;
        if (e != null) {
          expect.addi(e.mul(1.0));
        }
        if (d != null) {
          expect.addi(d.mul(0.5));
        }
        expect.divi(1.5); // a module missing from an adapter counts as zero there
        INDArray got = dense(merged, l, m);
        assertTrue(got.sub(expect).amaxNumber().doubleValue() < 1e-5, "layer " + l + " " + m);
      }
      assertEquals(null, merged.module(l, "o_proj"));
    }
    assertTrue(r.truncationErrors().values().stream().allMatch(x -> x < 1e-5), r.truncationErrors().toString());
    assertTrue(Files.exists(tmp.resolve("out-adapter/lathe-merge.json")));
    assertEquals(64, r.manifest().get("inputs").get(0).get("sha256").asText().length());
  }

  @Test
  void mergingIntoTheBaseEqualsApplyingTheAdapter(@TempDir Path tmp) throws Exception {
    setUp(tmp);
    // one adapter with weight 1: the merged model must score like base + adapter
    Config c = cfg(tmp, "task_arithmetic", "model", 16);
    c.set("adapters=[{path: " + tmp.resolve("en") + ", weight: 1.0}]");
    AdapterMerger.run(MergeConfig.from(c), tmp.resolve("base"));
    LlamaWeights base = HfCheckpoint.load(tmp.resolve("base"), DataType.DOUBLE);
    LlamaWeights merged = HfCheckpoint.load(tmp.resolve("out-model"), DataType.DOUBLE);
    AdapterSet en = PeftAdapter.read(tmp.resolve("en"), C, DataType.DOUBLE);
    List<int[]> ids = new ArrayList<>(List.of(new int[] {1, 5, 9, 14, 3, 22, 7}, new int[] {1, 40, 2, 33}));
    Batch b = Batch.of(ids, new int[] {2, 1}, 8, 0);
    LlamaModel withAdapter = new LlamaModel(base, en, DataType.DOUBLE);
    double[] a = withAdapter.sequenceLogProbs(b);
    LlamaModel m = new LlamaModel(merged, null, DataType.DOUBLE);
    double[] bb = m.sequenceLogProbs(b);
    assertEquals(a[0], bb[0], 1e-4);
    assertEquals(a[1], bb[1], 1e-4);
  }

  @Test
  void badInputIsRejectedAndNothingPublished(@TempDir Path tmp) throws Exception {
    setUp(tmp);
    var e = assertThrows(IllegalArgumentException.class,
        () -> MergeConfig.from(cfg(tmp, "ties", "adapter", 4, "parameters.density=1.5")));
    assertTrue(e.getMessage().contains("density"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> MergeConfig.from(cfg(tmp, "ties", "adapter", 4, "adapters=[]")));
    assertTrue(e.getMessage().contains("at least one adapter"), e.getMessage());
    // an adapter trained on another base (other widths)
    LlamaConfig other = new LlamaConfig("llama", 50, 32, 2, 4, 2, 24, 1e-5, 10000, false, 64, 1, 2);
    PeftAdapter.write(tmp.resolve("de"), AdapterSet.init(other, LoraConfig.of(2, 4, List.of("q_proj")), 1,
        DataType.FLOAT), "other", null);
    e = assertThrows(IllegalArgumentException.class,
        () -> AdapterMerger.run(MergeConfig.from(cfg(tmp, "ties", "adapter", 4)), tmp.resolve("base")));
    assertTrue(e.getMessage().contains("adapter_model.safetensors") && e.getMessage().contains("different base"),
        e.getMessage());
    Files.delete(tmp.resolve("de/adapter_model.safetensors"));
    var io = assertThrows(java.io.IOException.class,
        () -> AdapterMerger.run(MergeConfig.from(cfg(tmp, "ties", "adapter", 4)), tmp.resolve("base")));
    assertTrue(io.getMessage().contains("de") && io.getMessage().contains("not found"), io.getMessage());
    assertFalse(Files.exists(tmp.resolve("out-adapter")));
  }

  /**
   * A DoRA adapter merged into the base (its update m/‖W + sBA‖ ⊙ (W + sBA) − W) scores like base +
   * adapter; with quantize: nf4 (here under its old spelling base_quantize, renamed by validate) the merge lands on the dequantised NF4 weights, so it scores
   * like the NF4 base + adapter; and a DoRA adapter re-factored to a full-rank LoRA matches too.
   */
  @Test
  void doraAndNf4BasesMergeExactly(@TempDir Path tmp) throws Exception {
    setUp(tmp);
    LlamaWeights base = HfCheckpoint.load(tmp.resolve("base"), DataType.FLOAT);
    LoraConfig lc = new LoraConfig(3, 6, List.of("q_proj", "o_proj", "up_proj"), 0, false, true,
        Map.of("up_proj", 2), Map.of());
    var both = assertThrows(IllegalArgumentException.class, () -> MergeConfig.from(cfg(tmp, "linear", "model", 16,
        "double_quant=true")));
    assertTrue(both.getMessage().contains("double_quant needs quantize: nf4"), both.getMessage());
    for (String quant : List.of("none", "nf4")) {
      LlamaWeights seen = base.quantize(quant, true);
      AdapterSet d = AdapterSet.init(seen, lc, 4, DataType.FLOAT);
      Random r = new Random(9);
      for (Param p : d.params()) {
        for (long i = 0; i < p.value().length(); i++) {
          double v = p.value().getDouble(i);
          p.value().putScalar(i, p.name().endsWith("magnitude_vector") ? v * (1 + 0.3 * r.nextGaussian())
              : 0.3 * r.nextGaussian());
        }
      }
      PeftAdapter.write(tmp.resolve("dora-" + quant), d, "base", null);
      Config c = cfg(tmp, "linear", "model", 16, "base_quantize=" + quant,
          "base_double_quant=" + quant.equals("nf4"), "output.path=" + tmp.resolve("merged-" + quant))
          .validate(ConfigReference.MERGE);
      c.set("adapters=[{path: " + tmp.resolve("dora-" + quant) + ", weight: 1.0}]");
      AdapterMerger.run(MergeConfig.from(c), tmp.resolve("base"));
      List<int[]> ids = new ArrayList<>(List.of(new int[] {1, 5, 9, 14, 3, 22, 7}, new int[] {1, 40, 2, 33}));
      Batch b = Batch.of(ids, new int[] {2, 1}, 8, 0);
      double[] expect = new LlamaModel(seen, PeftAdapter.read(tmp.resolve("dora-" + quant), C, DataType.FLOAT),
          DataType.FLOAT).sequenceLogProbs(b);
      double[] got = new LlamaModel(HfCheckpoint.load(tmp.resolve("merged-" + quant), DataType.FLOAT), null,
          DataType.FLOAT).sequenceLogProbs(b);
      double[] plain = new LlamaModel(seen, null, DataType.FLOAT).sequenceLogProbs(b);
      for (int i = 0; i < got.length; i++) {
        assertEquals(expect[i], got[i], 1e-3, quant + " row " + i);
        assertTrue(Math.abs(expect[i] - plain[i]) > 0.01, "the adapter changes the model");
      }
    }
    // a DoRA adapter re-factored to a LoRA adapter of full rank
    Config c = cfg(tmp, "linear", "adapter", 16);
    c.set("adapters=[{path: " + tmp.resolve("dora-none") + ", weight: 1.0}]");
    AdapterMerger.run(MergeConfig.from(c), tmp.resolve("base"));
    Batch b = Batch.of(new ArrayList<>(List.of(new int[] {1, 5, 9, 14, 3, 22, 7})), new int[] {2}, 8, 0);
    double e = new LlamaModel(base, PeftAdapter.read(tmp.resolve("dora-none"), C, DataType.FLOAT), DataType.FLOAT)
        .sequenceLogProbs(b)[0];
    double g = new LlamaModel(base, PeftAdapter.read(tmp.resolve("out-adapter"), C, DataType.FLOAT), DataType.FLOAT)
        .sequenceLogProbs(b)[0];
    assertEquals(e, g, 1e-3);
  }

  /** A pre-quantised (lathe quantize, bitsandbytes layout) base: the merge dequantises it first. */
  @Test
  void mergingIntoAPrequantisedBase(@TempDir Path tmp) throws Exception {
    setUp(tmp);
    assertEquals(0, ai.lathe.model.cli.Main.dispatch(new String[] {"quantize", "--model", tmp.resolve("base").toString(),
        "--output", tmp.resolve("base4").toString()}, ai.lathe.model.cli.Main.COMMANDS));
    LlamaWeights q = HfCheckpoint.load(tmp.resolve("base4"), DataType.FLOAT);
    Config c = cfg(tmp, "task_arithmetic", "model", 16, "base_model=" + tmp.resolve("base4"),
        "output.path=" + tmp.resolve("merged4"));
    c.set("adapters=[{path: " + tmp.resolve("en") + ", weight: 1.0}]");
    AdapterMerger.run(MergeConfig.from(c), tmp.resolve("base4"));
    Batch b = Batch.of(new ArrayList<>(List.of(new int[] {1, 5, 9, 14, 3, 22, 7})), new int[] {2}, 8, 0);
    double e = new LlamaModel(q, PeftAdapter.read(tmp.resolve("en"), C, DataType.FLOAT), DataType.FLOAT)
        .sequenceLogProbs(b)[0];
    LlamaWeights merged = HfCheckpoint.load(tmp.resolve("merged4"), DataType.FLOAT);
    assertTrue(merged.layers[0].q() instanceof ai.lathe.model.nn.DenseLinear, "the merge is dense");
    assertEquals(e, new LlamaModel(merged, null, DataType.FLOAT).sequenceLogProbs(b)[0], 1e-3);
  }
}
