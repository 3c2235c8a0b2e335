package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.gen.Generation;
import ai.lathe.model.gen.Generator;
import ai.lathe.model.gen.Sampling;
import ai.lathe.model.gen.StopTokens;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.ChatTemplate.Message;
import ai.lathe.model.text.GenerationPrompt;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * `lathe generate` on a random Qwen3-shaped model with Qwen3's tokenizer and chat template: rows
 * as the generator computes them, independent of --batch, stop ids from the folder, and bad input.
 */
class GenerateCommandTest {
  static final ObjectMapper OM = new ObjectMapper();
  @TempDir
  static Path tmp;
  static Path model;
  static Path prompts;

  @BeforeAll
  static void makeModel() throws Exception {
    model = tmp.resolve("model");
    assertEquals(0, Main.dispatch(new String[] {"init-model", "--output", model.toString(), "--tokenizer",
        "target/tokenizers/qwen3", "--family", "qwen3", "--dim", "16", "--layers", "1", "--heads", "2",
        "--kv-heads", "1", "--ffn", "32", "--head-dim", "8", "--max-pos", "64"}, Main.COMMANDS));
    // Llama 3 style: generation_config.json lists several end ids
    Files.writeString(model.resolve("generation_config.json"), "{\"eos_token_id\": [7, 151643]}");
    prompts = tmp.resolve("prompts.jsonl");
    Files.writeString(prompts, """
        {"id": "a", "prompt": "Hello there"}
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}]}
        {"id": 7, "prompt": "Count: one, two,"}
        """);
  }

  static Object[] dispatch(String... argv) {
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      return new Object[] {Main.dispatch(argv, Main.COMMANDS), buf.toString(StandardCharsets.UTF_8)};
    } finally {
      System.setErr(err);
    }
  }

  static List<JsonNode> rows(Path f) throws Exception {
    List<JsonNode> out = new ArrayList<>();
    for (String line : Files.readAllLines(f)) {
      out.add(OM.readTree(line));
    }
    return out;
  }

  static List<JsonNode> run(String out, String... extra) throws Exception {
    List<String> argv = new ArrayList<>(List.of("generate", "--model", model.toString(), "--input", prompts.toString(),
        "--output", tmp.resolve(out).toString(), "--max-new-tokens", "6", "--threads", "1"));
    argv.addAll(List.of(extra));
    Object[] r = dispatch(argv.toArray(String[]::new));
    assertEquals(0, r[0], (String) r[1]);
    return rows(tmp.resolve(out));
  }

  @Test
  void rowsAreWhatTheGeneratorComputes() throws Exception {
    List<JsonNode> got = run("greedy.jsonl");
    assertEquals(3, got.size());
    assertEquals("a", got.get(0).get("id").asText());
    assertEquals(1, got.get(1).get("id").asInt()); // no id: the row's index
    assertEquals(7, got.get(2).get("id").asInt());
    try (Loaded l = Loaded.open(model, null, DataType.FLOAT, true)) {
      GenerationPrompt.Prompt p = GenerationPrompt.of(l.tokenizer(), ChatTemplate.MODEL,
          List.of(new Message("system", "Be brief."), new Message("user", "Why is the sky blue?")));
      assertTrue(p.text().endsWith("<|im_start|>assistant\n"), p.text());
      assertEquals(p.text(), got.get(1).get("prompt").asText());
      int[] stops = StopTokens.read(model, l.tokenizer().eosId());
      assertArrayEquals(new int[] {7, 151643, 2, l.tokenizer().eosId()}, stops); // config.json's eos is 2
      Generation g = new Generator(l.model()).generate(List.of(p.ids()), Sampling.greedy(6, stops), 0).get(0);
      assertArrayEquals(g.tokens(), GreedyRows.ints(got.get(1).get("tokens")));
      assertEquals(g.finishReason(), got.get(1).get("finish_reason").asText());
      assertEquals(l.tokenizer().decode(g.tokens()), got.get(1).get("completion").asText());
    }
  }

  @Test
  void samplesDoNotDependOnBatching() throws Exception {
    List<JsonNode> one = run("b1.jsonl", "--temperature", "1.3", "--top-p", "0.95", "--seed", "5", "--batch", "1");
    List<JsonNode> three = run("b3.jsonl", "--temperature", "1.3", "--top-p", "0.95", "--seed", "5", "--batch", "3");
    assertEquals(one, three); // (different seeds differing: SamplingTest)
  }

  @Test
  void badInputIsOneClearErrorAndWritesNothing() throws Exception {
    Path out = tmp.resolve("bad.jsonl");
    String[] cases = {
        "{\"prompt\": \"\"}", "field 'prompt' is empty",
        "{\"prompt\": \"" + "word ".repeat(80) + "\"}", "more than the model's max_position_embeddings 64",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
        "field 'messages' must end with a user turn"};
    for (int i = 0; i < cases.length; i += 2) {
      Path in = tmp.resolve("bad" + i + ".jsonl");
      Files.writeString(in, "{\"prompt\": \"fine\"}\n" + cases[i] + "\n");
      Object[] r = dispatch("generate", "--model", model.toString(), "--input", in.toString(), "--output",
          out.toString(), "--max-new-tokens", "2");
      String err = (String) r[1];
      assertEquals(1, r[0], err);
      assertEquals(1, err.lines().count(), err);
      assertTrue(err.contains(in + ":2: ") && err.contains(cases[i + 1]), err);
      assertFalse(Files.exists(out));
    }
    Object[] r = dispatch("generate", "--model", model.toString(), "--input", prompts.toString(), "--output",
        out.toString(), "--max-new-token", "2");
    assertEquals(2, r[0]);
    assertTrue(((String) r[1]).contains("unknown option --max-new-token (did you mean --max-new-tokens?)"),
        (String) r[1]);
    r = dispatch("generate", "--model", model.toString(), "--input", prompts.toString(), "--output",
        prompts.toString());
    assertEquals(2, r[0], (String) r[1]);
    assertFalse(Files.exists(out));
  }
}
