package ai.lathe.model.gen;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.cli.Loaded;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Greedy continuations equal an independent implementation of transformers' math token for token:
 * tests/python/llama_ref.py greedy recomputes the whole prefix in float64 PyTorch at every step
 * (golden files expected-greedy.jsonl; the smallest top-1/top-2 gap in them is ~2e-3, far above
 * either precision's error). Each family's prompts (1 to 33 tokens) run as one batch, base and
 * with each adapter (LoRA; DoRA on the Llama checkpoint); Mistral's window 8 is crossed.
 */
class GreedyAgainstTorchTest {
  static final Path GOLD = Path.of("src/test/resources/golden");
  static final ObjectMapper OM = new ObjectMapper();

  @ParameterizedTest
  @CsvSource({"torch-tiny,double", "families/llama3,double", "families/qwen2,double", "families/qwen3,double",
      "families/mistral,double", "families/mistral,float", "torch-tiny,float"})
  void matchesTorch(String dir, String precision) throws Exception {
    Path golden = GOLD.resolve(dir);
    DataType dt = precision.equals("double") ? DataType.DOUBLE : DataType.FLOAT;
    Map<String, List<JsonNode>> byAdapter = new LinkedHashMap<>();
    for (String line : Files.readAllLines(golden.resolve("expected-greedy.jsonl"))) {
      JsonNode j = OM.readTree(line);
      byAdapter.computeIfAbsent(j.get("adapter").asText(), k -> new ArrayList<>()).add(j);
    }
    assertTrue(byAdapter.size() >= 2, "base and at least one adapter");
    for (var e : byAdapter.entrySet()) {
      Path adapter = e.getKey().equals("base") ? null : golden.resolve(e.getKey());
      try (Loaded l = Loaded.open(golden.resolve("model"), adapter, dt, false)) {
        List<int[]> prompts = new ArrayList<>();
        for (JsonNode j : e.getValue()) {
          prompts.add(ints(j.get("prompt")));
        }
        int n = e.getValue().get(0).get("tokens").size();
        List<Generation> out = new Generator(l.model()).generate(prompts, Sampling.greedy(n, new int[0]), 0);
        for (int i = 0; i < out.size(); i++) {
          JsonNode j = e.getValue().get(i);
          assertArrayEquals(ints(j.get("tokens")), out.get(i).tokens(),
              dir + " " + e.getKey() + " row " + j.get("id") + " (" + precision + ")");
          assertEquals(Generation.LENGTH, out.get(i).finishReason());
        }
      }
    }
  }

  static int[] ints(JsonNode a) {
    int[] v = new int[a.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = a.get(i).asInt();
    }
    return v;
  }
}
