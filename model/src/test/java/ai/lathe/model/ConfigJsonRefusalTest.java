package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every refused rope setting of config.json is bad input (exit 2) through read's file-naming wrapper. */
class ConfigJsonRefusalTest {
  /** The exit code a command gives when reading this config.json fails, and the message. */
  static Map.Entry<Integer, String> refusal(ObjectNode cfg, Path tmp) throws Exception {
    Path f = tmp.resolve("config.json");
    FamilyConfigTest.OM.writeValue(f.toFile(), cfg);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(f));
    assertTrue(e.getMessage().startsWith(f + ": "), e.getMessage());
    return Map.entry(ConfigJsonRefusal.exitCode(e, 1), e.getMessage());
  }

  @Test
  void everyRopeRefusalExits2(@TempDir Path tmp) throws Exception {
    Map<String, ObjectNode> cases = new LinkedHashMap<>();
    ObjectNode yarn = FamilyConfigTest.base("llama");
    yarn.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0);
    cases.put("rope_scaling.rope_type = \"yarn\"", yarn);
    ObjectNode old = FamilyConfigTest.base("qwen3");
    old.putObject("rope_parameters").put("type", "dynamic");
    cases.put("rope_parameters.type = \"dynamic\"", old);
    cases.put("rope_scaling = 8", FamilyConfigTest.base("llama").put("rope_scaling", 8));
    ObjectNode partialRotary = FamilyConfigTest.base("llama");
    partialRotary.putObject("rope_scaling").put("rope_type", "default").put("partial_rotary_factor", 0.5);
    cases.put("rope_scaling.partial_rotary_factor = 0.5", partialRotary);
    ObjectNode missing = FamilyConfigTest.base("llama");
    missing.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 1.0)
        .put("high_freq_factor", 4.0);
    cases.put("'rope_scaling.original_max_position_embeddings'", missing);
    ObjectNode text = FamilyConfigTest.base("llama");
    text.putObject("rope_scaling").put("rope_type", "llama3").put("factor", "8").put("low_freq_factor", 1.0)
        .put("high_freq_factor", 4.0).put("original_max_position_embeddings", 8192);
    cases.put("'rope_scaling.factor'", text);
    ObjectNode inverted = FamilyConfigTest.base("llama");
    inverted.putObject("rope_parameters").put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 4.0)
        .put("high_freq_factor", 1.0).put("original_max_position_embeddings", 8192);
    cases.put("rope_parameters = {", inverted);
    for (var c : cases.entrySet()) {
      Map.Entry<Integer, String> r = refusal(c.getValue(), tmp);
      assertEquals(2, r.getKey(), r.getValue());
      assertTrue(r.getValue().contains(c.getKey()), "expected '" + c.getKey() + "' in: " + r.getValue());
    }
  }

  /** The other refusals of config.json are bad input too: an unknown family, an unsupported key, a missing field. */
  @Test
  void otherRefusalsExit2(@TempDir Path tmp) throws Exception {
    assertEquals(2, refusal(FamilyConfigTest.base("gemma"), tmp).getKey());
    assertEquals(2, refusal(FamilyConfigTest.base("llama").put("hidden_act", "gelu"), tmp).getKey());
    var noLayers = FamilyConfigTest.base("llama");
    noLayers.remove("num_hidden_layers");
    var r = refusal(noLayers, tmp);
    assertEquals(2, r.getKey(), r.getValue());
    assertTrue(r.getValue().contains("num_hidden_layers"), r.getValue());
  }

  @Test
  void theExitCodeLooksThroughWrappers() {
    Exception wrapped = new RuntimeException("task failed", new java.io.IOException("load",
        new ConfigJsonRefusal("unsupported config: rope_scaling.rope_type = \"yarn\"")));
    assertEquals(2, ConfigJsonRefusal.exitCode(wrapped, 1));
    assertEquals(1, ConfigJsonRefusal.exitCode(new IllegalArgumentException("x", new RuntimeException()), 1));
    assertEquals(3, ConfigJsonRefusal.exitCode(new IllegalStateException("y"), 3));
  }
}
