package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** compare-modes: the three modes on the same data, with the report's numbers where they must be. */
class CompareModesCommandTest {
  @Test
  void reportsEveryModeSideBySide(@TempDir Path tmp) throws Exception {
    Path model = tmp.resolve("model");
    LlamaConfig c = new LlamaConfig("llama", 32000, 32, 2, 4, 2, 48, 1e-5, 10000, false, 256, 1, 2);
    RandomLlama.write(model, c, 3, "F32", Path.of("../data/tokenizer/llama2"));
    Path out = tmp.resolve("cmp");
    assertEquals(0, CompareModesCommand.run(new String[] {"--model", model.toString(), "--output", out.toString(),
        "--data", "../data/sample/debian-faq/instructions.jsonl", "--steps", "3", "--seq-len", "48", "--batch", "2",
        "--lr-full", "3e-3", "--lr-lora", "1e-2", "--threads", "1"}));
    JsonNode r = new ObjectMapper().readTree(out.resolve("compare-modes.json").toFile());
    assertEquals(3, r.get("modes").size());
    JsonNode lora = r.get("modes").get(0);
    JsonNode dora = r.get("modes").get(1);
    JsonNode full = r.get("modes").get(2);
    assertEquals("full", full.get("mode").asText());
    assertEquals(c.parameterCount(), full.get("trainable_parameters").asLong(), "full trains every weight");
    assertTrue(lora.get("trainable_parameters").asLong() < dora.get("trainable_parameters").asLong()
        && dora.get("trainable_parameters").asLong() < full.get("trainable_parameters").asLong() / 10);
    assertTrue(full.get("bytes_on_disk").asLong() > 4 * c.parameterCount(), "the full model is on disk");
    assertTrue(lora.get("bytes_on_disk").asLong() < full.get("bytes_on_disk").asLong() / 10);
    for (JsonNode m : r.get("modes")) {
      assertTrue(m.get("val_loss_after").asDouble() < m.get("val_loss_before").asDouble(), m.toString());
      assertEquals(m.get("replay_loss_after").asDouble() - r.get("replay_loss_before").asDouble(),
          m.get("forgetting").asDouble(), 1e-9);
      assertTrue(m.get("tokens_per_s").asDouble() > 0);
    }
    assertTrue(Math.abs(full.get("forgetting").asDouble()) > 1e-4, "full training moves the replay loss");
    assertTrue(Files.size(out.resolve("compare-modes.png")) > 1000);
  }
}
