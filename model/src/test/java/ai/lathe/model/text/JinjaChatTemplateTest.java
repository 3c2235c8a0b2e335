package ai.lathe.model.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.text.ChatTemplate.Message;
import ai.lathe.model.text.ChatTemplate.Tokens;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The models' own chat templates (Llama 3.1, Qwen3) against strings written from reading them. */
class JinjaChatTemplateTest {
  static final Path LLAMA31 = Path.of("target/tokenizers/llama3_1");
  static final Path QWEN3 = Path.of("target/tokenizers/qwen3");

  static final List<Message> CHAT = List.of(
      new Message("system", "You are terse."),
      new Message("user", " Hi there "),
      new Message("assistant", "Hello! How can I help?"),
      new Message("user", "What is 2+2?"),
      new Message("assistant", "4."));

  // Llama 3.1's shipped template: bos_token before the first turn, header, "\n\n", content|trim,
  // <|eot_id|>; no default system preamble (this tokenizer_config's template has no
  // "Cutting Knowledge Date" block).
  static final String LLAMA_TEXT = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
      + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
      + "<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>"
      + "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
      + "<|start_header_id|>assistant<|end_header_id|>\n\n4.<|eot_id|>";

  // Qwen3: ChatML turns; the assistant turn after the last user query gets an empty think block;
  // content is not trimmed.
  static final String QWEN_TEXT = "<|im_start|>system\nYou are terse.<|im_end|>\n"
      + "<|im_start|>user\n Hi there <|im_end|>\n"
      + "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
      + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
      + "<|im_start|>assistant\n<think>\n\n</think>\n\n4.<|im_end|>\n";

  @Test
  void llama31RendersItsTemplate() throws Exception {
    JinjaChatTemplate t = JinjaChatTemplate.load(LLAMA31);
    assertEquals(LLAMA_TEXT, t.render(CHAT, false));
    assertEquals(LLAMA_TEXT.substring(0, LLAMA_TEXT.indexOf("4.<|eot_id|>")), t.render(CHAT.subList(0, 4), true));
  }

  @Test
  void qwen3RendersItsTemplate() throws Exception {
    JinjaChatTemplate t = JinjaChatTemplate.load(QWEN3);
    assertEquals(QWEN_TEXT, t.render(CHAT, false));
    assertEquals(QWEN_TEXT.substring(0, QWEN_TEXT.indexOf("<think>")), t.render(CHAT.subList(0, 4), true));
    // reasoning in an earlier turn is dropped from history (split/rstrip/lstrip on strings)
    List<Message> thought = new ArrayList<>(CHAT);
    thought.set(2, new Message("assistant", "<think>\nsay hi\n</think>\n\nHello! How can I help?"));
    assertEquals(QWEN_TEXT, t.render(thought, false));
  }

  @Test
  void llama31TokensAndMasks() throws Exception {
    try (HfTokenizer tok = HfTokenizer.open(LLAMA31)) {
      Tokens t = ChatTemplate.of("model").tokenize(tok, CHAT);
      assertArrayEquals(tok.encode(LLAMA_TEXT, false).ids(), t.ids());
      assertEquals(128000, t.ids()[0]);
      assertEquals(1, Arrays.stream(t.ids()).filter(i -> i == 128000).count(), "one BOS");
      assertEquals(List.of("Hello! How can I help?<|eot_id|>", "4.<|eot_id|>"), trainedRuns(tok, t));
      assertEquals(128009, t.ids()[t.ids().length - 1]);
      assertTrue(t.train()[t.ids().length - 1], "end-of-turn token is trained");
    }
  }

  @Test
  void qwen3TokensAndMasks() throws Exception {
    try (HfTokenizer tok = HfTokenizer.open(QWEN3)) {
      Tokens t = ChatTemplate.MODEL.tokenize(tok, CHAT);
      assertArrayEquals(tok.encode(QWEN_TEXT, false).ids(), t.ids());
      assertEquals(151644, t.ids()[0]); // <|im_start|>: Qwen3 has no BOS
      assertEquals(List.of("Hello! How can I help?<|im_end|>", "<think>\n\n</think>\n\n4.<|im_end|>"),
          trainedRuns(tok, t));
    }
  }

  @Test
  void templateWithoutBosGetsThePostProcessorsBosOnce(@TempDir Path dir) throws Exception {
    Path d = withConfig(dir, "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\\n\\n"
        + "{{ m.content }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
        + "<|start_header_id|>assistant<|end_header_id|>\\n\\n{% endif %}");
    try (HfTokenizer tok = HfTokenizer.open(d)) {
      Tokens t = ChatTemplate.MODEL.tokenize(tok, CHAT.subList(1, 3));
      assertEquals(128000, t.ids()[0]);
      assertEquals(1, Arrays.stream(t.ids()).filter(i -> i == 128000).count());
      assertEquals(List.of("Hello! How can I help?<|eot_id|>"), trainedRuns(tok, t));
    }
  }

  @Test
  void prefixUnstableTemplateIsRefused(@TempDir Path dir) throws Exception {
    // the turn count leads the text: every prefix renders a different first line
    Path d = withConfig(dir, "{{ bos_token }}turns={{ messages|length }}\\n{% for m in messages %}"
        + "{{ m.role }}: {{ m.content }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}");
    try (HfTokenizer tok = HfTokenizer.open(d)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> ChatTemplate.MODEL.tokenize(tok, CHAT));
      assertTrue(e.getMessage().contains("not prefix-stable at messages[2]"), e.getMessage());
      assertTrue(e.getMessage().contains("tokenizer_config.json"), e.getMessage());
    }
  }

  @Test
  void raiseExceptionFailsWithItsMessage(@TempDir Path dir) throws Exception {
    Path d = withConfig(dir, "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with user') }}"
        + "{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}");
    JinjaChatTemplate t = JinjaChatTemplate.load(d);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.render(CHAT, false));
    assertTrue(e.getMessage().contains("Conversations must start with user"), e.getMessage());
    assertTrue(e.getMessage().contains(d.resolve("tokenizer_config.json").toString()), e.getMessage());
  }

  @Test
  void defaultIsModelOnlyWithAChatTemplate() {
    assertEquals("model", ChatTemplate.defaultName(LLAMA31, "llama2"));
    assertEquals("model", ChatTemplate.defaultName(QWEN3.resolve("tokenizer.json"), "none"));
    assertEquals("llama2", ChatTemplate.defaultName(Path.of("../data/tokenizer/llama2/tokenizer.json"), "llama2"));
  }

  @Test
  void pythonStringMethods() {
    assertEquals("b\n", PyStringMethods.lstrip("\n\nb\n", "\n"));
    assertEquals(List.of("a", "", "b"), PyStringMethods.split("a,,b", ","));
    assertEquals(List.of("a", "b"), PyStringMethods.split("  a \t b ", null));
    assertEquals("{% set ns = namespace(x=(true), n=( messages|length - 1)) %}{% for m in ms|reverse %}",
        JinjaChatTemplate.adapt("{% set ns = namespace(x=true, n= messages|length - 1) %}{% for m in ms[::-1] %}"));
  }

  private static Path withConfig(Path dir, String template) throws Exception {
    Files.createSymbolicLink(dir.resolve("tokenizer.json"), LLAMA31.resolve("tokenizer.json").toAbsolutePath());
    Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": {\"content\": \"<|begin_of_text|>\"},"
        + " \"eos_token\": \"<|eot_id|>\", \"chat_template\": \"" + template.replace("\"", "\\\"") + "\"}");
    return dir;
  }

  /** The decoded text of each run of trained tokens. */
  static List<String> trainedRuns(HfTokenizer tok, Tokens t) {
    List<String> runs = new ArrayList<>();
    int i = 0;
    while (i < t.ids().length) {
      if (!t.train()[i]) {
        i++;
        continue;
      }
      int j = i;
      while (j < t.ids().length && t.train()[j]) {
        j++;
      }
      runs.add(tok.decode(Arrays.copyOfRange(t.ids(), i, j)));
      i = j;
    }
    return runs;
  }
}
