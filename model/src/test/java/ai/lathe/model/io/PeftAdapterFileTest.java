package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** The validating adapter loader: config and tensors must agree with each other and the model. */
class PeftAdapterFileTest {
  static final LlamaConfig C = CheckpointIoTest.C; // 2 layers, hidden 16, kv out 8

  /** PEFT tensors for v_proj [8, 16] at rank r on these layers. */
  static Map<String, Safetensors.Tensor> vProj(int r, int... layers) {
    Map<String, Safetensors.Tensor> t = new LinkedHashMap<>();
    for (int l : layers) {
      String k = "base_model.model.model.layers." + l + ".self_attn.v_proj";
      t.put(k + ".lora_A.weight", new Safetensors.Tensor(new long[] {r, 16}, new float[r * 16]));
      t.put(k + ".lora_B.weight", new Safetensors.Tensor(new long[] {8, r}, new float[8 * r]));
    }
    return t;
  }

  static Path adapter(Path tmp, String extraConfig, Map<String, Safetensors.Tensor> t) throws IOException {
    Path d = tmp.resolve("ad");
    Files.createDirectories(d);
    Files.writeString(d.resolve(PeftAdapter.CONFIG), "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":4,"
        + "\"target_modules\":[\"v_proj\"]" + extraConfig + "}");
    Safetensors.write(d.resolve(PeftAdapter.WEIGHTS), t, "F32", Map.of());
    return d;
  }

  static String refused(Path dir) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> PeftAdapter.read(dir, C, DataType.FLOAT));
    assertTrue(e.getMessage().contains(dir.toString()), "names the folder's file: " + e.getMessage());
    return e.getMessage();
  }

  @Test
  void rankMustMatchConfig(@TempDir Path tmp) throws IOException {
    String m = refused(adapter(tmp, ",\"r\":16", vProj(8, 0, 1)));
    assertTrue(m.contains("adapter_model.safetensors") && m.contains("layers.0.self_attn.v_proj.lora_A.weight")
        && m.contains("[8, 16]") && m.contains("rank 16"), m);
    m = refused(adapter(tmp, ",\"rank_pattern\":{\"layers.1.self_attn.v_proj\":4}", vProj(2, 0, 1)));
    assertTrue(m.contains("layers.1.self_attn.v_proj.lora_A.weight") && m.contains("rank 4"), m);
  }

  @Test
  void inAndOutDimsMustFitTheModel(@TempDir Path tmp) throws IOException {
    Map<String, Safetensors.Tensor> t = vProj(2, 0, 1);
    t.put("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight",
        new Safetensors.Tensor(new long[] {16, 2}, new float[32]));
    String m = refused(adapter(tmp, "", t));
    assertTrue(m.contains("layers.1.self_attn.v_proj.lora_B.weight") && m.contains("different base model"), m);
  }

  @Test
  void modulesToSaveIsRefused(@TempDir Path tmp) throws IOException {
    String m = refused(adapter(tmp, ",\"modules_to_save\":[\"lm_head\"]", vProj(2, 0, 1)));
    assertTrue(m.contains("adapter_config.json") && m.contains("modules_to_save"), m);
    // null or empty is PEFT's "none"
    assertNotNull(PeftAdapter.read(adapter(tmp, ",\"modules_to_save\":[]", vProj(2, 0, 1)), C, DataType.FLOAT));
  }

  @Test
  void layersToTransformIsHonoured(@TempDir Path tmp) throws IOException {
    for (String form : List.of("1", "[1]")) {
      AdapterSet a = PeftAdapter.read(adapter(tmp, ",\"layers_to_transform\":" + form + ",\"layers_pattern\":\"layers\"",
          vProj(2, 1)), C, DataType.FLOAT);
      assertNull(a.module(0, "v_proj"), form);
      assertEquals(2, a.module(1, "v_proj").rank(), form);
      assertEquals(List.of(1), a.config().layersToTransform());
    }
    // written back, PEFT sees the same layers
    AdapterSet a = PeftAdapter.read(tmp.resolve("ad"), C, DataType.FLOAT);
    PeftAdapter.write(tmp.resolve("back"), a, "base", null);
    JsonNode cfg = new ObjectMapper().readTree(tmp.resolve("back/adapter_config.json").toFile());
    assertEquals("[1]", cfg.get("layers_to_transform").toString());
    assertEquals(2, PeftAdapter.read(tmp.resolve("back"), C, DataType.FLOAT).params().size());
    // a fresh adapter for training honours it too
    assertNull(AdapterSet.init(C, a.config(), 1, DataType.FLOAT).module(0, "v_proj"));
  }

  @Test
  void tensorsOutsideLayersToTransformOrTheModelAreRefused(@TempDir Path tmp) throws IOException {
    String m = refused(adapter(tmp, ",\"layers_to_transform\":[1]", vProj(2, 0, 1)));
    assertTrue(m.contains("'base_model.model.model.layers.0.self_attn.v_proj.lora_") && m.contains("layers_to_transform"),
        m);
    m = refused(adapter(tmp, ",\"layers_to_transform\":[0]", vProj(2, 1)));
    assertTrue(m.contains("layers.1.self_attn.v_proj") && m.contains("layers_to_transform [0]"), m);
    m = refused(adapter(tmp, ",\"layers_to_transform\":[1,5]", vProj(2, 1)));
    assertTrue(m.contains("adapter_config.json") && m.contains("num_hidden_layers 2"), m);
    m = refused(adapter(tmp, ",\"layers_to_transform\":[1],\"layers_pattern\":\"h\"", vProj(2, 1)));
    assertTrue(m.contains("layers_pattern"), m);
    m = refused(adapter(tmp, "", vProj(2, 0, 1, 2)));
    assertTrue(m.contains("'base_model.model.model.layers.2.self_attn.v_proj.lora_") && m.contains("layer 2")
        && m.contains("num_hidden_layers"), m);
  }

  @Test
  void foreignKeysModulesAndDtypesAreRefused(@TempDir Path tmp) throws IOException {
    Map<String, Safetensors.Tensor> t = vProj(2, 0, 1);
    t.put("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", new Safetensors.Tensor(new long[] {2, 16},
        new float[32]));
    String m = refused(adapter(tmp, "", t));
    assertTrue(m.contains("layers.0.self_attn.q_proj.lora_A.weight") && m.contains("target_modules"), m);
    for (String key : List.of("base_model.model.lm_head.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.v_proj.lora_embedding_A",
        "base_model.model.model.layers.0.self_attn.v_proj.base_layer.weight",
        "base_model.model.model.layers.0.mlp.v_proj.lora_A.weight",
        "base_model.model.model.layers.99999999999.self_attn.v_proj.lora_A.weight")) {
      t = vProj(2, 0, 1);
      t.put(key, new Safetensors.Tensor(new long[] {1}, new float[1]));
      m = refused(adapter(tmp, "", t));
      assertTrue(m.contains("'" + key + "'"), m);
    }
    t = vProj(2, 0, 1);
    t.put("base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector",
        new Safetensors.Tensor(new long[] {8}, new float[8]));
    m = refused(adapter(tmp, "", t));
    assertTrue(m.contains("lora_magnitude_vector") && m.contains("use_dora"), m);
    t = vProj(2, 0, 1);
    t.put("base_model.model.model.layers.0.self_attn.v_proj.lora_A.default.weight", t.get(
        "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"));
    m = refused(adapter(tmp, "", t));
    assertTrue(m.contains("lora_A.default.weight") && m.contains("same weight"), m);
    Path d = adapter(tmp, "", vProj(2, 0, 1));
    Map<String, Safetensors.Raw> raw = new LinkedHashMap<>();
    vProj(2, 0, 1).forEach((k, v) -> raw.put(k, k.contains("layers.1") && k.contains("lora_A")
        ? Safetensors.Raw.u8(v.shape(), new byte[v.data().length]) : Safetensors.Raw.f32(v.shape(), v.data())));
    Safetensors.writeRaw(d.resolve(PeftAdapter.WEIGHTS), raw, Map.of());
    m = refused(d);
    assertTrue(m.contains("layers.1.self_attn.v_proj.lora_A.weight") && m.contains("dtype U8"), m);
  }

  @Test
  void validAdapterStillLoadsWithPeftKeyVariants(@TempDir Path tmp) throws IOException {
    LoraConfig lc = new LoraConfig(2, 4, List.of("v_proj"), 0, false, true, Map.of(), Map.of());
    Map<String, Safetensors.Tensor> t = new LinkedHashMap<>();
    vProj(2, 0, 1).forEach((k, v) -> t.put(k.replace(".weight", ".default.weight"), v));
    t.put("base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector.weight",
        new Safetensors.Tensor(new long[] {8}, new float[8]));
    t.put("base_model.model.model.layers.1.self_attn.v_proj.lora_magnitude_vector",
        new Safetensors.Tensor(new long[] {8}, new float[8]));
    Path d = adapter(tmp, ",\"use_dora\":true", t);
    try (PeftAdapterFile f = PeftAdapterFile.open(d, C)) {
      assertEquals(lc.useDora(), f.config().useDora());
      assertTrue(f.adapts(1, "v_proj") && !f.adapts(1, "q_proj"));
      assertEquals("base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector.weight",
          f.keys(0, "v_proj").magnitude());
      assertEquals(6, f.tensors().size());
    }
  }
}
