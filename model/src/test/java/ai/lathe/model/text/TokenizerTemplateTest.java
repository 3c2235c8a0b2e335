package ai.lathe.model.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.text.ChatTemplate.Message;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class TokenizerTemplateTest {
  static final Path TOK = Path.of("../data/tokenizer/llama2/tokenizer.json");
  static HfTokenizer tok;

  @BeforeAll
  static void open() throws Exception {
    tok = HfTokenizer.open(TOK);
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  @Test
  void llama2VocabularyAndSpecialTokens() {
    assertEquals(32000, tok.vocabSize());
    assertEquals(1, tok.bosId());
    assertEquals(2, tok.eosId());
    // known ids of the Llama-2 vocabulary: "▁Hello" = 15043, "▁world" = 3186
    assertArrayEquals(new int[] {15043, 3186}, tok.ids("Hello world"));
  }

  @Test
  void otherScriptsRoundTripUnchanged() {
    for (String s : List.of("Debian ist ein freies Betriebssystem.", "Debian 是一个自由的操作系统。",
        "Debian — свободная операционная система.", "דביאן היא מערכת הפעלה חופשית", "ديبيان نظام تشغيل حر",
        "emoji 🐧 and tabs\tand\nnewlines")) {
      assertEquals(s, tok.decode(tok.ids(s)), s);
    }
  }

  @Test
  void templatesMarkOnlyAssistantTokens() {
    List<Message> conv = List.of(new Message("system", "Be brief."), new Message("user", "What is Debian?"),
        new Message("assistant", "An operating system."), new Message("user", "Free?"),
        new Message("assistant", "Yes."));
    ChatTemplate.Rendered r = ChatTemplate.LLAMA2.render(conv, "<s>", "</s>");
    assertEquals("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is Debian? [/INST] An operating system. </s>"
        + "<s>[INST] Free? [/INST] Yes. </s>", r.text());
    ChatTemplate.Tokens t = ChatTemplate.LLAMA2.tokenize(tok, conv);
    assertEquals(1, t.ids()[0]);
    StringBuilder trained = new StringBuilder();
    List<Integer> trainedIds = new java.util.ArrayList<>();
    for (int i = 0; i < t.ids().length; i++) {
      if (t.train()[i]) {
        trainedIds.add(t.ids()[i]);
      }
    }
    trained.append(tok.decode(trainedIds.stream().mapToInt(Integer::intValue).toArray()));
    assertTrue(trained.toString().contains("An operating system.") && trained.toString().contains("Yes."), trained.toString());
    assertFalse(trained.toString().contains("Debian?") || trained.toString().contains("Free?"), trained.toString());
    assertTrue(trainedIds.stream().filter(x -> x == 2).count() == 2, "both eos tokens are trained");

    ChatTemplate.Rendered cm = ChatTemplate.CHATML.render(List.of(new Message("user", "hi"),
        new Message("assistant", "hello")), "<s>", "</s>");
    assertEquals("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n", cm.text());
    ChatTemplate.Rendered al = ChatTemplate.ALPACA.render(List.of(new Message("user", "Add"),
        new Message("input", "2 and 3"), new Message("assistant", "5")), "<s>", "</s>");
    assertTrue(al.text().endsWith("### Instruction:\nAdd\n\n### Input:\n2 and 3\n\n### Response:\n5</s>"), al.text());
    assertEquals("5</s>", al.text().substring(al.trainRanges().get(0)[0]));
  }

  @Test
  void badRowsNameTheField() throws Exception {
    var om = new com.fasterxml.jackson.databind.ObjectMapper();
    Examples.BadRow e = assertThrows(Examples.BadRow.class,
        () -> Examples.toMessages(om.readTree("{\"instruction\": \"x\"}"), "alpaca", null));
    assertTrue(e.getMessage().contains("'output'"), e.getMessage());
    e = assertThrows(Examples.BadRow.class,
        () -> Examples.toMessages(om.readTree("{\"instruction\": 3, \"output\": \"y\"}"), "alpaca", null));
    assertTrue(e.getMessage().contains("'instruction'") && e.getMessage().contains("string"), e.getMessage());
    e = assertThrows(Examples.BadRow.class, () -> Examples.toMessages(
        om.readTree("{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}]}"), "messages", null));
    assertTrue(e.getMessage().contains("expected role 'user'"), e.getMessage());
    var ms = Examples.toMessages(om.readTree("{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"},"
        + "{\"from\": \"gpt\", \"value\": \"a\"}]}"), "messages", null);
    assertEquals(List.of(new Message("user", "q"), new Message("assistant", "a")), ms);
  }

  @Test
  void tokenizerLargerThanModelIsRejected() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tok.checkFits(1000, Path.of("m")));
    assertTrue(e.getMessage().contains("32000") && e.getMessage().contains("1000"), e.getMessage());
  }
}
