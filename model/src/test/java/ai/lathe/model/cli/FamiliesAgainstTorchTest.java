package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * `score` on checkpoints of each supported family written by the independent PyTorch reference
 * (tests/python/llama_ref.py make-family): Llama 3 (llama3 rope scaling, head_dim 24, tied head,
 * no lm_head tensor), Qwen2 (q/k/v biases), Qwen3 (q/k head norms, head_dim 24, rope_parameters),
 * Mistral (sliding window 8), each with and without a LoRA adapter on q/k/v/o/down.
 */
class FamiliesAgainstTorchTest {
  static final Path GOLD = Path.of("src/test/resources/golden/families");

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "qwen2", "qwen3", "mistral"})
  void matchesTorch(String family, @TempDir Path tmp) throws Exception {
    Path dir = GOLD.resolve(family);
    Path base = tmp.resolve("base.jsonl");
    Path adapted = tmp.resolve("adapted.jsonl");
    String[] common = {"--model", dir.resolve("model").toString(), "--input", dir.resolve("rows.jsonl").toString(),
        "--batch", "2"};
    assertEquals(0, Main.dispatch(ScoreAgainstTorchTest.concat(new String[] {"score", "--output", base.toString()},
        common), Main.COMMANDS));
    assertEquals(0, Main.dispatch(ScoreAgainstTorchTest.concat(new String[] {"score", "--output", adapted.toString(),
        "--adapter", dir.resolve("adapter").toString()}, common), Main.COMMANDS));
    List<JsonNode> exp = ScoreAgainstTorchTest.lines(dir.resolve("expected.jsonl"));
    List<JsonNode> gotBase = ScoreAgainstTorchTest.lines(base);
    List<JsonNode> gotAd = ScoreAgainstTorchTest.lines(adapted);
    assertEquals(exp.size(), gotBase.size());
    assertEquals(exp.size(), gotAd.size());
    for (int i = 0; i < exp.size(); i++) {
      double e0 = exp.get(i).get("logprob").asDouble();
      double e1 = exp.get(i).get("logprob_adapter").asDouble();
      assertEquals(e0, gotBase.get(i).get("logprob").asDouble(), 1e-3, family + " row " + i + " base");
      assertEquals(e1, gotAd.get(i).get("logprob").asDouble(), 1e-3, family + " row " + i + " adapter");
      assertTrue(Math.abs(e0 - e1) > 0.1, "the adapter must change the result");
    }
  }
}
