package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `score` on a checkpoint written by an independent PyTorch implementation of transformers'
 * Llama (GQA, untied head, rope_theta 500000, BF16), with and without a PEFT-named adapter.
 */
class ScoreAgainstTorchTest {
  static final Path GOLD = Path.of("src/test/resources/golden/torch-tiny");

  static List<JsonNode> lines(Path p) throws Exception {
    ObjectMapper om = new ObjectMapper();
    return Files.readAllLines(p).stream().filter(s -> !s.isBlank()).map(s -> {
      try {
        return om.readTree(s);
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    }).toList();
  }

  @Test
  void matchesTorchWithAndWithoutAdapter(@TempDir Path tmp) throws Exception {
    Path base = tmp.resolve("base.jsonl");
    Path adapted = tmp.resolve("adapted.jsonl");
    String[] common = {"--model", GOLD.resolve("model").toString(), "--input", GOLD.resolve("rows.jsonl").toString(),
        "--batch", "2"};
    assertEquals(0, Main.dispatch(concat(new String[] {"score", "--output", base.toString()}, common), Main.COMMANDS));
    assertEquals(0, Main.dispatch(concat(new String[] {"score", "--output", adapted.toString(), "--adapter",
        GOLD.resolve("adapter").toString()}, common), Main.COMMANDS));
    List<JsonNode> exp = lines(GOLD.resolve("expected.jsonl"));
    List<JsonNode> gotBase = lines(base);
    List<JsonNode> gotAd = lines(adapted);
    assertEquals(exp.size(), gotBase.size());
    for (int i = 0; i < exp.size(); i++) {
      double e0 = exp.get(i).get("logprob").asDouble();
      double e1 = exp.get(i).get("logprob_adapter").asDouble();
      double g0 = gotBase.get(i).get("logprob").asDouble();
      double g1 = gotAd.get(i).get("logprob").asDouble();
      assertEquals(e0, g0, 1e-3, "row " + i + " base");
      assertEquals(e1, g1, 1e-3, "row " + i + " adapter");
      assertTrue(Math.abs(e0 - e1) > 0.1, "the adapter must change the result");
      JsonNode row = gotBase.get(i);
      int n = row.get("input_ids").size() - row.get("completion_start").asInt();
      assertEquals(n, row.get("num_tokens").asInt());
    }
  }

  /** PEFT DoRA (use_dora, lora_magnitude_vector, rank_pattern) against the PyTorch reference's DoRA forward. */
  @Test
  void doraMatchesTorch(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("dora.jsonl");
    assertEquals(0, Main.dispatch(new String[] {"score", "--model", GOLD.resolve("model").toString(), "--input",
        GOLD.resolve("rows.jsonl").toString(), "--output", out.toString(), "--adapter",
        GOLD.resolve("adapter-dora").toString()}, Main.COMMANDS));
    List<JsonNode> exp = lines(GOLD.resolve("expected-dora.jsonl"));
    List<JsonNode> got = lines(out);
    List<JsonNode> base = lines(GOLD.resolve("expected.jsonl"));
    for (int i = 0; i < exp.size(); i++) {
      assertEquals(exp.get(i).get("logprob_dora").asDouble(), got.get(i).get("logprob").asDouble(), 1e-3, "row " + i);
      assertTrue(Math.abs(exp.get(i).get("logprob_dora").asDouble() - base.get(i).get("logprob").asDouble()) > 0.1);
    }
  }

  static String[] concat(String[] a, String[] b) {
    String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }
}
