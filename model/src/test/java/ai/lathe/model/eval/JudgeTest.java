package ai.lathe.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.cli.Loaded;
import ai.lathe.model.cli.ScoreCommand;
import ai.lathe.model.text.ChatTemplate;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

class JudgeTest {
  static Path model(Path dir, int maxPos) throws Exception {
    LlamaConfig c = new LlamaConfig("llama", 32000, 32, 2, 4, 2, 48, 1e-5, 10000, false, maxPos, 1, 2);
    RandomLlama.write(dir, c, 7, "F32", Path.of("../data/tokenizer/llama2"));
    return dir;
  }

  /**
   * The verdict equals what `lathe score` computes for the same judge sequences (the prefix plus
   * each label token, the label as the completion): p(A) = exp(lA) / (exp(lA) + exp(lB)), both orders.
   */
  @Test
  void verdictEqualsScoringTheJudgePromptsWithScore(@TempDir Path tmp) throws Exception {
    Path m = model(tmp.resolve("judge"), 1024);
    try (Loaded l = Loaded.open(m, null, DataType.FLOAT, true)) {
      Judge j = new Judge(l.model(), l.tokenizer(), ChatTemplate.LLAMA2, JudgePrompt.DEFAULT);
      String q = "How do I install a package on Debian?";
      String cand = "Run apt install followed by the package name, as root.";
      String base = "Use the package manager.";
      Judge.Verdict v = j.judge(q, cand, base);
      List<Judge.Query> qs = List.of(j.query(q, cand, base), j.query(q, base, cand));
      ObjectMapper om = new ObjectMapper();
      List<String> lines = new ArrayList<>();
      for (Judge.Query x : qs) {
        assertNotEquals(x.labelA(), x.labelB());
        for (int label : new int[] {x.labelA(), x.labelB()}) {
          var row = om.createObjectNode();
          var ids = row.putArray("input_ids");
          for (int t : x.prefix()) {
            ids.add(t);
          }
          ids.add(label);
          row.put("completion_start", x.prefix().length);
          lines.add(om.writeValueAsString(row));
        }
      }
      // the label token is the one the text "A"/"B" becomes after the verdict prefix
      assertEquals("A", l.tokenizer().decode(new int[] {qs.get(0).labelA()}).strip());
      assertEquals("B", l.tokenizer().decode(new int[] {qs.get(0).labelB()}).strip());
      Path in = tmp.resolve("judge-rows.jsonl");
      Files.write(in, lines);
      Path out = tmp.resolve("scored.jsonl");
      assertEquals(0, ScoreCommand.run(new String[] {"--model", m.toString(), "--input", in.toString(), "--output",
          out.toString(), "--batch", "1"}));
      List<JsonNode> scored = new ArrayList<>();
      for (String s : Files.readAllLines(out)) {
        scored.add(om.readTree(s));
      }
      double p0 = 1 / (1 + Math.exp(scored.get(1).get("logprob").asDouble() - scored.get(0).get("logprob").asDouble()));
      double p1 = 1 / (1 + Math.exp(scored.get(3).get("logprob").asDouble() - scored.get(2).get("logprob").asDouble()));
      assertEquals(p0, v.pACandidateFirst(), 1e-6);
      assertEquals(p1, v.pABaselineFirst(), 1e-6);
      // balanced calibration's s is half the difference of the two orders' label log-odds, as score gives them
      double l1 = scored.get(0).get("logprob").asDouble() - scored.get(1).get("logprob").asDouble();
      double l2 = scored.get(2).get("logprob").asDouble() - scored.get(3).get("logprob").asDouble();
      assertEquals((l1 - l2) / 2, Calibration.score(v.pACandidateFirst(), v.pABaselineFirst()), 1e-5);
      assertEquals((l1 + l2) / 2, Calibration.positionBias(v.pACandidateFirst(), v.pABaselineFirst()), 1e-5);
      assertTrue(v.pACandidateFirst() > 0 && v.pACandidateFirst() < 1);
      // swapping the answers changes the prompt: the two orders are two different forward passes
      assertNotEquals(v.pACandidateFirst(), v.pABaselineFirst());
    }
  }

  @Test
  void labelsThatAreNotSingleTokensFailNamingThem(@TempDir Path tmp) throws Exception {
    Path m = model(tmp.resolve("judge"), 1024);
    try (Loaded l = Loaded.open(m, null, DataType.FLOAT, true)) {
      JudgePrompt p = new JudgePrompt(JudgePrompt.DEFAULT_TEMPLATE, "Verdict: ", "reply one",
          "reply number two");
      Judge j = new Judge(l.model(), l.tokenizer(), ChatTemplate.LLAMA2, p);
      var e = assertThrows(IllegalArgumentException.class, () -> j.judge("q", "a", "b"));
      assertTrue(e.getMessage().contains("cannot encode the answer labels 'reply one' and 'reply number two'"),
          e.getMessage());
      assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    }
  }

  @Test
  void promptsLongerThanTheJudgesWindowFail(@TempDir Path tmp) throws Exception {
    Path m = model(tmp.resolve("judge"), 128);
    try (Loaded l = Loaded.open(m, null, DataType.FLOAT, true)) {
      Judge j = new Judge(l.model(), l.tokenizer(), ChatTemplate.LLAMA2, JudgePrompt.DEFAULT);
      var e = assertThrows(IllegalArgumentException.class, () -> j.judge("q", "a", "b"));
      assertTrue(e.getMessage().contains("more than the judge's max_position_embeddings 128"), e.getMessage());
    }
  }

  @Test
  void templateNeedsEveryPlaceholderAndRendersInOnePass() {
    assertThrows(IllegalArgumentException.class, () -> new JudgePrompt("{question} {answer_a}", "[[", "A", "B"));
    assertThrows(IllegalArgumentException.class, () -> new JudgePrompt(JudgePrompt.DEFAULT_TEMPLATE, "[[", "A", "A"));
    JudgePrompt p = new JudgePrompt("Q={question} A={answer_a} B={answer_b}", "[[", "A", "B");
    assertEquals("Q=q A={answer_b} B=b", p.render("q", "{answer_b}", "b"));
  }
}
