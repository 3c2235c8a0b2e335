package ai.lathe.merge;

import static ai.lathe.merge.AdapterMergerTest.C;
import static ai.lathe.merge.AdapterMergerTest.cfg;
import static ai.lathe.merge.AdapterMergerTest.dense;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.io.Safetensors;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Merge reads its inputs through the same validating adapter loader as score and training. */
class MergeInputValidationTest {
  static final ObjectMapper OM = new ObjectMapper();

  static void editConfig(Path adapter, Consumer<ObjectNode> edit) throws Exception {
    Path f = adapter.resolve(PeftAdapter.CONFIG);
    ObjectNode n = (ObjectNode) OM.readTree(f.toFile());
    edit.accept(n);
    OM.writeValue(f.toFile(), n);
  }

  static String refused(Path tmp) throws Exception {
    MergeConfig mc = MergeConfig.from(cfg(tmp, "ties", "adapter", 4));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> AdapterMerger.run(mc, tmp.resolve("base")));
    assertFalse(Files.exists(tmp.resolve("out-adapter")), "nothing published");
    return e.getMessage();
  }

  @Test
  void configRankDisagreeingWithTheTensorsIsRefused(@TempDir Path tmp) throws Exception {
    new AdapterMergerTest().setUp(tmp);
    editConfig(tmp.resolve("en"), n -> n.put("r", 16)); // the tensors are rank 4
    String m = refused(tmp);
    assertTrue(m.contains(tmp.resolve("en").resolve(PeftAdapter.WEIGHTS).toString())
        && m.contains("layers.0.self_attn.q_proj.lora_A.weight") && m.contains("rank 16"), m);
  }

  @Test
  void modulesToSaveIsRefused(@TempDir Path tmp) throws Exception {
    new AdapterMergerTest().setUp(tmp);
    editConfig(tmp.resolve("de"), n -> n.putArray("modules_to_save").add("lm_head"));
    String m = refused(tmp);
    assertTrue(m.contains(tmp.resolve("de").resolve(PeftAdapter.CONFIG).toString()) && m.contains("modules_to_save"), m);
  }

  @Test
  void tensorsForAbsentLayersOrUntargetedModulesAreRefused(@TempDir Path tmp) throws Exception {
    new AdapterMergerTest().setUp(tmp);
    Path w = tmp.resolve("en").resolve(PeftAdapter.WEIGHTS);
    Map<String, Safetensors.Tensor> orig = new LinkedHashMap<>();
    try (Safetensors st = Safetensors.open(w)) {
      for (String k : st.entries().keySet()) {
        orig.put(k, new Safetensors.Tensor(st.entry(k).shape(), st.readFloats(k)));
      }
    }
    Map<String, Safetensors.Tensor> t = new LinkedHashMap<>(orig);
    t.put("base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight",
        orig.get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    Safetensors.write(w, t, "F32", Map.of());
    String m = refused(tmp);
    assertTrue(m.contains("'base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight'")
        && m.contains("num_hidden_layers"), m);
    t = new LinkedHashMap<>(orig);
    t.put("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
        new Safetensors.Tensor(new long[] {4, 16}, new float[64]));
    Safetensors.write(w, t, "F32", Map.of());
    m = refused(tmp);
    assertTrue(m.contains("layers.0.self_attn.k_proj.lora_A.weight") && m.contains("target_modules"), m);
  }

  @Test
  void layersToTransformIsHonouredByTheMerge(@TempDir Path tmp) throws Exception {
    new AdapterMergerTest().setUp(tmp);
    // en adapts layer 1 only
    AdapterSet en = AdapterMergerTest.adapter(new LoraConfig(4, 8, List.of("q_proj", "v_proj"), 0, false, false,
        Map.of(), Map.of(), List.of(1)), 1);
    PeftAdapter.write(tmp.resolve("en"), en, "base", null);
    AdapterMerger.run(MergeConfig.from(cfg(tmp, "linear", "adapter", 16)), tmp.resolve("base"));
    AdapterSet de = PeftAdapter.read(tmp.resolve("de"), C, DataType.FLOAT);
    AdapterSet merged = PeftAdapter.read(tmp.resolve("out-adapter"), C, DataType.FLOAT);
    for (int l = 0; l < 2; l++) {
      for (String m : List.of("q_proj", "v_proj", "down_proj")) {
        INDArray e = dense(en, l, m);
        INDArray d = dense(de, l, m);
        int[] s = C.moduleShape(m);
        INDArray expect = ai.lathe.model.nn.Buf.zeros(DataType.FLOAT, s[0], s[1]).arr;
        if (e != null) {
          expect.addi(e);
        }
        if (d != null) {
          expect.addi(d.mul(0.5));
        }
        expect.divi(1.5); // where en leaves a layer alone it counts as zero, as for an untargeted module
        assertTrue(dense(merged, l, m).sub(expect).amaxNumber().doubleValue() < 1e-5, "layer " + l + " " + m);
      }
    }
    assertNull(en.module(0, "q_proj"));

    // en alone: the merged adapter adapts layer 1 only, and merged into the base leaves layer 0 as it was
    Config c = cfg(tmp, "linear", "adapter", 16, "output.path=" + tmp.resolve("en-only"));
    c.set("adapters=[{path: " + tmp.resolve("en") + ", weight: 1.0}]");
    AdapterMerger.run(MergeConfig.from(c), tmp.resolve("base"));
    assertEquals("[1]", OM.readTree(tmp.resolve("en-only/adapter_config.json").toFile()).get("layers_to_transform")
        .toString());
    AdapterSet only = PeftAdapter.read(tmp.resolve("en-only"), C, DataType.FLOAT);
    assertNull(only.module(0, "q_proj"));
    assertTrue(dense(only, 1, "v_proj").sub(dense(en, 1, "v_proj")).amaxNumber().doubleValue() < 1e-5);
    c = cfg(tmp, "linear", "model", 16, "output.path=" + tmp.resolve("en-model"));
    c.set("adapters=[{path: " + tmp.resolve("en") + ", weight: 1.0}]");
    AdapterMerger.run(MergeConfig.from(c), tmp.resolve("base"));
    try (HfCheckpoint base = HfCheckpoint.open(tmp.resolve("base"));
        HfCheckpoint out = HfCheckpoint.open(tmp.resolve("en-model"))) {
      String q0 = LlamaWeights.moduleKey(0, "q_proj");
      assertArrayEquals(base.read(q0, 16, 16), out.read(q0, 16, 16), 0f);
      String q1 = LlamaWeights.moduleKey(1, "q_proj");
      assertFalse(java.util.Arrays.equals(base.read(q1, 16, 16), out.read(q1, 16, 16)));
    }
  }
}
