package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

class PeftAdapterTest {
  static final LlamaConfig C = CheckpointIoTest.C;

  @Test
  void writesPeftLayoutAndReadsItBack(@TempDir Path tmp) throws Exception {
    LoraConfig lc = new LoraConfig(4, 8, List.of("q_proj", "down_proj"), 0.1, true, false,
        Map.of("layers.1.self_attn.q_proj", 2), Map.of("down_proj", 3.0));
    AdapterSet a = AdapterSet.init(C, lc, 5, DataType.FLOAT);
    PeftAdapter.write(tmp.resolve("ad"), a, "base", null);
    JsonNode cfg = new ObjectMapper().readTree(tmp.resolve("ad/adapter_config.json").toFile());
    assertEquals("LORA", cfg.get("peft_type").asText());
    assertEquals(4, cfg.get("r").asInt());
    assertTrue(cfg.get("use_rslora").asBoolean());
    assertEquals(2, cfg.get("rank_pattern").get("layers.1.self_attn.q_proj").asInt());
    try (Safetensors st = Safetensors.open(tmp.resolve("ad/adapter_model.safetensors"))) {
      assertArrayEquals(new long[] {4, 16}, st.entry("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape());
      assertArrayEquals(new long[] {16, 4}, st.entry("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").shape());
      assertArrayEquals(new long[] {2, 16}, st.entry("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight").shape());
      assertArrayEquals(new long[] {16, 4}, st.entry("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").shape());
      assertEquals(8, st.entries().size());
    }
    AdapterSet b = PeftAdapter.read(tmp.resolve("ad"), C, DataType.FLOAT);
    assertEquals(2, b.module(1, "q_proj").rank());
    assertEquals(4, b.module(0, "q_proj").rank());
    assertEquals(3.0 / Math.sqrt(4), ((ai.lathe.model.adapter.LoraModule) b.module(0, "down_proj")).scale(), 1e-12);
    var pa = a.params();
    var pb = b.params();
    assertEquals(pa.size(), pb.size());
    for (int i = 0; i < pa.size(); i++) {
      assertEquals(pa.get(i).name(), pb.get(i).name());
      assertEquals(pa.get(i).value(), pb.get(i).value());
    }
  }

  @Test
  void readsPeftInMemoryNamesAndRejectsMissingModules(@TempDir Path tmp) throws Exception {
    Path d = tmp.resolve("ad");
    Files.createDirectories(d);
    Files.writeString(d.resolve("adapter_config.json"),
        "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":4,\"target_modules\":[\"v_proj\"]}");
    var t = new java.util.LinkedHashMap<String, Safetensors.Tensor>();
    for (int l = 0; l < 2; l++) {
      String k = "base_model.model.model.layers." + l + ".self_attn.v_proj";
      t.put(k + ".lora_A.default.weight", new Safetensors.Tensor(new long[] {2, 16}, new float[32]));
      t.put(k + ".lora_B.default.weight", new Safetensors.Tensor(new long[] {8, 2}, new float[16]));
    }
    Safetensors.write(d.resolve("adapter_model.safetensors"), t, "F32", Map.of());
    AdapterSet a = PeftAdapter.read(d, C, DataType.FLOAT);
    assertEquals(2, a.module(1, "v_proj").rank());
    t.remove("base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight");
    Safetensors.write(d.resolve("adapter_model.safetensors"), t, "F32", Map.of());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.read(d, C, DataType.FLOAT));
    assertTrue(e.getMessage().contains("layers.1.self_attn.v_proj.lora_B"), e.getMessage());
  }
}
