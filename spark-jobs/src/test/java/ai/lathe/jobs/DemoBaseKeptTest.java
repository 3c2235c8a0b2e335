package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A pipeline rerun keeps the demo base only when it was trained with the settings the pipeline now
 * has: the same base config (numbers compared by value) and the same architecture.
 */
class DemoBaseKeptTest {
  private static final ObjectMapper OM = new ObjectMapper();
  private static final List<String> INIT = List.of("--output", "w/model-init", "--dim", "256", "--layers", "4",
      "--heads", "8", "--kv-heads", "4", "--ffn", "688", "--seed", "0");

  @Test
  void sameSettingsWrittenDifferentlyAreTheSame() throws Exception {
    var recorded = OM.readTree("{\"train\": {\"lr\": 0.003, \"max_steps\": 150}, \"data\": \"d.jsonl\"}");
    var planned = OM.readTree("{\"data\": \"d.jsonl\", \"train\": {\"max_steps\": 150.0, \"lr\": 3.0e-3}}");
    assertEquals(List.of(), DemoBase.differences(recorded, planned));
  }

  @Test
  void everyChangedAddedOrRemovedKeyIsNamed() throws Exception {
    var recorded = OM.readTree("{\"train\": {\"lr\": 0.003, \"max_steps\": 30}, \"seed\": 1}");
    var planned = OM.readTree("{\"train\": {\"lr\": 0.003, \"max_steps\": 150}, \"val_fraction\": 0.1}");
    assertEquals(List.of("seed: 1 -> (unset)", "train.max_steps: 30 -> 150", "val_fraction: (unset) -> 0.1"),
        DemoBase.differences(recorded, planned));
  }

  @Test
  void aKeptBaseOfOtherSettingsIsRefusedAndOneOfTheSameIsKept(@TempDir Path tmp) throws Exception {
    Path model = tmp.resolve("model");
    Files.createDirectories(model);
    Config base = Config.load(null, List.of("model=" + tmp.resolve("model-init"), "output=" + model,
        "data=d.jsonl", "train.max_steps=150", "train.lr=3.0e-3"));
    Config prep = Config.load(null, List.of("val_fraction=0.1"));
    ObjectNode recorded = base.root().deepCopy().put("val_fraction", 0.1);
    Files.writeString(model.resolve("lathe-run.json"), OM.createObjectNode().set("config", recorded).toString());
    Files.writeString(model.resolve("config.json"), "{\"hidden_size\": 256, \"num_hidden_layers\": 4, "
        + "\"num_attention_heads\": 8, \"num_key_value_heads\": 4, \"intermediate_size\": 688}");
    DemoBase.checkKept(INIT, base, prep); // the same settings: kept
    ObjectNode moved = recorded.deepCopy().put("model", "/elsewhere/model-init").put("output", "/elsewhere/model");
    Files.writeString(model.resolve("lathe-run.json"), OM.createObjectNode().set("config", moved).toString());
    DemoBase.checkKept(INIT, base, prep); // a work dir moved or copied: where it lies is not a setting

    Config longer = Config.load(null, List.of("model=" + tmp.resolve("model-init"), "output=" + model,
        "data=d.jsonl", "train.max_steps=300", "train.lr=3.0e-3"));
    var e = assertThrows(IllegalArgumentException.class, () -> DemoBase.checkKept(INIT, longer, prep));
    assertTrue(e.getMessage().startsWith(model + ": the demo base kept from an earlier run"), e.getMessage());
    assertTrue(e.getMessage().contains("train.max_steps: 150 -> 300"), e.getMessage());

    List<String> wider = new java.util.ArrayList<>(INIT);
    wider.set(wider.indexOf("--dim") + 1, "512");
    var a = assertThrows(IllegalArgumentException.class, () -> DemoBase.checkKept(wider, base, prep));
    assertTrue(a.getMessage().contains("hidden_size: 256 -> 512"), a.getMessage());
  }

  @Test
  void aGivenModelWithoutARunRecordIsNotChecked(@TempDir Path tmp) throws Exception {
    Path model = tmp.resolve("model");
    Files.createDirectories(model);
    Files.writeString(model.resolve("config.json"), "{\"hidden_size\": 2048}");
    Config base = Config.load(null, List.of("output=" + model));
    DemoBase.checkKept(INIT, base, Config.load(null, List.of()));
  }
}
