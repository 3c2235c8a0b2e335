package ai.lathe.model.text;

import ai.lathe.model.text.ChatTemplate.Message;
import java.util.ArrayList;
import java.util.List;

/**
 * A conversation that ends with a user turn, rendered and tokenised as the prompt a model answers:
 * the text up to where the assistant's reply would start. For {@code model} that is the Jinja
 * chat_template with add_generation_prompt=true (BOS as {@link ModelTemplateTokens} adds it); for the
 * built-in templates it is the text before the trained range of an appended empty assistant turn,
 * tokenised as {@link ChatTemplate#tokenize} tokenises training text, so generation continues
 * exactly where training put the completion.
 */
public final class GenerationPrompt {
  private GenerationPrompt() {}

  /** The rendered prompt and its token ids. */
  public record Prompt(String text, int[] ids) {}

  public static Prompt of(HfTokenizer tok, ChatTemplate template, List<Message> messages) {
    if (messages.isEmpty() || !messages.get(messages.size() - 1).role().equals("user")) {
      throw new IllegalArgumentException("a generation prompt must end with a user turn");
    }
    if (template == ChatTemplate.MODEL) {
      JinjaChatTemplate t = tok.chatTemplate();
      if (t == null) {
        throw new IllegalArgumentException(tok.file() + ": template 'model' needs a tokenizer_config.json"
            + " with a chat_template beside it");
      }
      String text = t.render(messages, true);
      String bos = t.bosToken();
      boolean special = bos == null || bos.isEmpty() || !text.startsWith(bos);
      return new Prompt(text, tok.encode(text, special).ids());
    }
    List<Message> withReply = new ArrayList<>(messages);
    withReply.add(new Message("assistant", ""));
    ChatTemplate.Rendered r = template.render(withReply, tok.bosToken(), tok.eosToken());
    int start = r.trainRanges().get(r.trainRanges().size() - 1)[0];
    String text = r.text().substring(0, start);
    return new Prompt(text, tok.encode(text).ids());
  }
}
