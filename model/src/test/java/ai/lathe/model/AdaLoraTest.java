package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdaLoraConfig;
import ai.lathe.model.adapter.AdaLoraExport;
import ai.lathe.model.adapter.AdaLoraModule;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.io.Safetensors;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** AdaLoRA through the model: gradients, slicing to kept ranks, PEFT folders and the equivalent LoRA. */
class AdaLoraTest {
  static LoraConfig adalora(List<String> targets, double dropout) {
    return new LoraConfig(8, 6.0, targets, dropout, false, false, Map.of(), Map.of(), null,
        new AdaLoraConfig(4, 2, 0, 0, 1, 0.85, 0.85, 0.5, 20));
  }

  /** AdaLoRA modules moved away from their initialisation (A, E, B random, float-representable), some ranks masked. */
  static AdapterSet randomAdaLora(LlamaConfig c, LoraConfig lc, long seed, DataType dt) {
    AdapterSet a = AdapterSet.init(c, lc, seed, dt);
    Random r = new Random(seed);
    for (Param p : a.params()) {
      for (long i = 0; i < p.value().length(); i++) {
        p.value().putScalar(i, (float) (0.4 * r.nextGaussian()));
      }
    }
    int i = 0;
    for (AdaLoraModule m : a.adaLoraModules()) {
      boolean[] keep = new boolean[m.rank()];
      for (int k = 0; k < keep.length; k++) {
        keep[k] = (k + i) % 3 != 0 || i % 5 == 4; // some modules keep all, one keeps none below
      }
      if (i == 2) {
        keep = new boolean[m.rank()];
      }
      m.mask(keep);
      i++;
    }
    return a;
  }

  void checkGradients(double dropout) {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 17, 0.3, 0.2, DataType.DOUBLE);
    AdapterSet a = randomAdaLora(c, adalora(List.of("all-linear"), dropout), 5, DataType.DOUBLE);
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
    double h = 1e-5;
    int[] checked = new int[3];
    double worst = 0;
    for (Param p : a.params()) {
      INDArray v = p.value();
      INDArray g = p.grad().dup();
      int kind = p.name().endsWith("lora_A") ? 0 : p.name().endsWith("lora_E") ? 1 : 2;
      for (long i = 0; i < v.length(); i += (kind == 1 ? 1 : 3)) {
        double o = v.getDouble(i);
        v.putScalar(i, o + h);
        double lp = DoraTest.loss(m, b, weights, training);
        v.putScalar(i, o - h);
        double lm = DoraTest.loss(m, b, weights, training);
        v.putScalar(i, o);
        double fd = (lp - lm) / (2 * h);
        double an = g.getDouble(i);
        double err = Math.abs(fd - an) / Math.max(1e-6, Math.abs(fd) + Math.abs(an));
        // relative 1e-4, or 1e-7 absolute for entries near zero (central differences' h² term)
        assertTrue(err < 1e-4 || Math.abs(fd - an) < 1e-7, p.name() + "[" + i + "]: " + an + " vs " + fd);
        worst = Math.max(worst, Math.abs(fd - an) < 1e-7 ? 0 : err);
        checked[kind]++;
      }
    }
    assertTrue(checked[0] > 200 && checked[1] > 50 && checked[2] > 200, java.util.Arrays.toString(checked));
    System.out.printf("AdaLoRA (dropout %.2f): %s A/E/B gradient entries, worst relative error %.2e%n", dropout,
        java.util.Arrays.toString(checked), worst);
  }

  @Test
  void gradientsThroughAEAndBMatchFiniteDifferences() {
    checkGradients(0.0);
  }

  @Test
  void gradientsWithDropoutMatchFiniteDifferences() {
    checkGradients(0.25);
  }

  /** dW from the sliced PEFT tensors (k kept ranks) equals the full module's (masked E zero) to 1e-12. */
  @Test
  void slicingToKeptRanksLeavesDeltaWeightUnchanged() {
    LlamaConfig c = TinyModels.gqaUntied();
    AdapterSet a = randomAdaLora(c, adalora(List.of("all-linear"), 0), 7, DataType.DOUBLE);
    Map<String, Safetensors.Tensor> saved = a.toTensors();
    int slicedSomething = 0;
    for (AdaLoraModule m : a.adaLoraModules()) {
      String p = "base_model.model." + m.path();
      Safetensors.Tensor ta = saved.get(p + ".lora_A");
      Safetensors.Tensor te = saved.get(p + ".lora_E");
      Safetensors.Tensor tb = saved.get(p + ".lora_B");
      int k = m.keptCount();
      assertEquals(k, ta.shape()[0]);
      assertEquals(k, te.shape()[0]);
      assertEquals(k, tb.shape()[1]);
      slicedSomething += k < m.rank() ? 1 : 0;
      INDArray full = m.deltaWeight();
      INDArray sliced = Nd4j.zeros(DataType.DOUBLE, full.shape());
      int in = (int) ta.shape()[1];
      int out = (int) tb.shape()[0];
      for (int o = 0; o < out; o++) {
        for (int j = 0; j < in; j++) {
          double s = 0;
          for (int i = 0; i < k; i++) {
            s += (double) tb.data()[o * k + i] * te.data()[i] * ta.data()[i * in + j];
          }
          sliced.putScalar(new long[] {o, j}, s * 6.0 / (4 + 1e-5));
        }
      }
      assertEquals(0.0, full.sub(sliced).amaxNumber().doubleValue(), 1e-12, m.path());
    }
    assertTrue(slicedSomething > 5);
  }

  /**
   * The AdaLoRA folder (PEFT's form) and the exported LoRA folder, each read back through the
   * ordinary loader, score like the in-memory AdaLoRA adapter (1e-5).
   */
  @Test
  void adaLoraFolderAndExportedLoraScoreLikeTheAdapter(@TempDir Path tmp) throws Exception {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 19, 0.3, 0.2, DataType.FLOAT);
    AdapterSet a = randomAdaLora(c, adalora(List.of("q_proj", "v_proj", "down_proj"), 0), 2, DataType.FLOAT);
    Batch b = TinyModels.randomBatch(c, 2, 9, 4);
    double[] ref = new LlamaModel(w, a, DataType.FLOAT).sequenceLogProbs(b);
    double[] base = new LlamaModel(w, null, DataType.FLOAT).sequenceLogProbs(b);
    PeftAdapter.write(tmp.resolve("ada"), a, "base", null);
    JsonNode cfg = new ObjectMapper().readTree(tmp.resolve("ada/adapter_config.json").toFile());
    assertEquals("ADALORA", cfg.get("peft_type").asText());
    assertEquals(4, cfg.get("init_r").asInt());
    JsonNode rp = cfg.get("rank_pattern").get("model.layers.0.self_attn.q_proj.lora_E");
    assertEquals(4, rp.size());
    assertEquals(((AdaLoraModule) a.module(0, "q_proj")).kept()[0], rp.get(0).asBoolean());
    AdaLoraExport.Lora lora = AdaLoraExport.toLora(a);
    java.nio.file.Files.createDirectories(tmp.resolve("lora"));
    new ObjectMapper().writeValue(tmp.resolve("lora/adapter_config.json").toFile(), lora.config().toPeftJson("base"));
    Safetensors.write(tmp.resolve("lora/adapter_model.safetensors"), lora.tensors(), "F32", Map.of());
    for (String dir : List.of("ada", "lora")) {
      AdapterSet back = PeftAdapter.read(tmp.resolve(dir), c, DataType.FLOAT);
      double[] got = new LlamaModel(w, back, DataType.FLOAT).sequenceLogProbs(b);
      double moved = 0;
      for (int i = 0; i < ref.length; i++) {
        assertEquals(ref[i], got[i], 1e-5, dir + " row " + i);
        moved = Math.max(moved, Math.abs(ref[i] - base[i]));
      }
      assertTrue(moved > 1e-2, "the adapter changes the model");
      assertEquals(1, back.module(1, "q_proj").rank() >= 1 ? 1 : 0);
    }
    assertEquals(1, PeftAdapter.read(tmp.resolve("lora"), c, DataType.FLOAT).module(0, "down_proj").rank(),
        "a module that kept no rank becomes rank 1 of zeros");
  }

  /** A rank_pattern that disagrees with the sliced tensors is one error naming the file, tensor and shapes. */
  @Test
  void rankPatternDisagreeingWithTensorsIsRefused(@TempDir Path tmp) throws Exception {
    LlamaConfig c = TinyModels.gqaUntied();
    AdapterSet a = randomAdaLora(c, adalora(List.of("q_proj"), 0), 2, DataType.FLOAT);
    PeftAdapter.write(tmp.resolve("ada"), a, "base", null);
    Path cfg = tmp.resolve("ada/adapter_config.json");
    var n = (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper().readTree(cfg.toFile());
    var rp = (com.fasterxml.jackson.databind.node.ArrayNode) n.get("rank_pattern")
        .get("model.layers.1.self_attn.q_proj.lora_E");
    rp.set(0, com.fasterxml.jackson.databind.node.BooleanNode.valueOf(!rp.get(0).asBoolean()));
    new ObjectMapper().writeValue(cfg.toFile(), n);
    var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> PeftAdapter.read(tmp.resolve("ada"), c, DataType.FLOAT));
    assertTrue(e.getMessage().contains("adapter_model.safetensors") && e.getMessage().contains(
        "model.layers.1.self_attn.q_proj.lora_A") && e.getMessage().contains("rank_pattern"), e.getMessage());
  }
}
