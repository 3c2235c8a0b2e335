package ai.lathe.model.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.text.ChatTemplate.Message;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A generation prompt is exactly the untrained prefix of the training example with the reply
 * appended: generation continues where SFT put the completion, for every template.
 */
class GenerationPromptTest {
  static final List<Message> CONV = List.of(new Message("system", "Be brief."), new Message("user", "Why is the sky blue?"));

  @ParameterizedTest
  @CsvSource({"../data/tokenizer/llama2,llama2", "../data/tokenizer/llama2,none", "../data/tokenizer/llama2,alpaca",
      "target/tokenizers/qwen3,chatml", "target/tokenizers/qwen3,model",
      "target/tokenizers/llama3_1,model"})
  void promptIsTheTrainingExamplesUntrainedPrefix(String dir, String template) throws Exception {
    try (HfTokenizer tok = HfTokenizer.open(Path.of(dir))) {
      ChatTemplate t = ChatTemplate.of(template);
      GenerationPrompt.Prompt p = GenerationPrompt.of(tok, t, CONV);
      List<Message> withReply = new java.util.ArrayList<>(CONV);
      withReply.add(new Message("assistant", "Rayleigh scattering."));
      ChatTemplate.Tokens train = t.tokenize(tok, withReply);
      int first = 0;
      while (!train.train()[first]) {
        first++;
      }
      assertArrayEquals(Arrays.copyOf(train.ids(), first), p.ids(), template + ": " + p.text());
      assertTrue(p.text().contains("Why is the sky blue?"));
    }
  }

  @ParameterizedTest
  @CsvSource({"chatml", "model"})
  void conversationMustEndWithAUserTurn(String template) throws Exception {
    try (HfTokenizer tok = HfTokenizer.open(Path.of("target/tokenizers/qwen3"))) {
      var e = assertThrows(IllegalArgumentException.class, () -> GenerationPrompt.of(tok, ChatTemplate.of(template),
          List.of(new Message("user", "hi"), new Message("assistant", "hello"))));
      assertEquals("a generation prompt must end with a user turn", e.getMessage());
    }
  }
}
