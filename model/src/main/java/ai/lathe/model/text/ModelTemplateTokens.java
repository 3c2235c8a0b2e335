package ai.lathe.model.text;

import ai.lathe.model.text.ChatTemplate.Message;
import ai.lathe.model.text.ChatTemplate.Tokens;
import java.util.Arrays;
import java.util.List;

/**
 * Tokenises a conversation with the model's own chat template and marks the loss on the
 * assistant turns: each turn's content tokens plus its end-of-turn token (the template's text up
 * to and including eos_token, as TRL's assistant-only loss does; the newline some templates put
 * after it is not trained). BOS is added once: when the rendered text starts with bos_token it is
 * tokenised without special tokens, otherwise the tokenizer's post-processor adds what it defines.
 */
final class ModelTemplateTokens {
  private ModelTemplateTokens() {}

  /**
   * A turn starts where the prompt ends: the conversation before it rendered with
   * add_generation_prompt=true must be a prefix of the whole conversation's text and its tokens a
   * prefix of the whole conversation's tokens. The turn ends where the conversation up to and
   * including it, rendered alone, ends (trailing whitespace after the end-of-turn token dropped)
   * when that is a prefix of the whole; templates that rewrite earlier turns once later ones exist
   * (Qwen3 drops reasoning from history) end it at the first eos_token after its start instead.
   */
  static Tokens tokenize(HfTokenizer tok, List<Message> conversation) {
    List<Message> ms = mergeInputs(conversation);
    JinjaChatTemplate t = tok.chatTemplate();
    if (t == null) {
      throw new IllegalArgumentException(tok.file() + ": template 'model' needs a tokenizer_config.json"
          + " with a chat_template beside it");
    }
    String full = t.render(ms, false);
    String bos = t.bosToken();
    boolean special = bos == null || bos.isEmpty() || !full.startsWith(bos);
    HfTokenizer.Encoded enc = tok.encode(full, special);
    boolean[] train = new boolean[enc.ids().length];
    int lastEnd = 0;
    for (int i = 0; i < ms.size(); i++) {
      if (!ms.get(i).role().equals("assistant")) {
        continue;
      }
      String prompt = t.render(ms.subList(0, i), true);
      if (!full.startsWith(prompt) || prompt.length() < lastEnd) {
        throw notStable(t, i, "the conversation before it, rendered with add_generation_prompt=true, is not a prefix"
            + " of the whole conversation (they differ from character " + firstDiff(prompt, full) + ")");
      }
      int[] promptIds = tok.encode(prompt, special).ids();
      if (promptIds.length > enc.ids().length
          || !Arrays.equals(promptIds, Arrays.copyOf(enc.ids(), promptIds.length))) {
        throw notStable(t, i, "the prompt's tokens are not a prefix of the whole conversation's tokens");
      }
      String upTo = t.render(ms.subList(0, i + 1), false);
      if (!upTo.startsWith(prompt)) {
        throw notStable(t, i, "the turn rendered with its conversation does not continue the generation prompt");
      }
      int end;
      if (full.startsWith(upTo)) {
        end = PyStringMethods.rstrip(upTo, null).length();
      } else {
        String eos = t.eosToken();
        int at = eos == null || eos.isEmpty() ? -1 : full.indexOf(eos, prompt.length());
        if (at < 0) {
          throw notStable(t, i, "it renders differently once later turns follow and no eos_token ends it");
        }
        end = at + eos.length();
      }
      if (end <= prompt.length()) {
        throw notStable(t, i, "the turn renders no text");
      }
      for (int k = promptIds.length; k < train.length; k++) {
        int c = enc.charStart()[k];
        if (c >= end) {
          break;
        }
        train[k] = c >= prompt.length();
      }
      lastEnd = end;
    }
    return new Tokens(enc.ids(), train);
  }

  /** Alpaca's "input" turn joins the user turn before it (instruction, blank line, input): templates know no such role. */
  static List<Message> mergeInputs(List<Message> ms) {
    List<Message> out = new java.util.ArrayList<>();
    for (Message m : ms) {
      int last = out.size() - 1;
      if (m.role().equals("input") && last >= 0 && out.get(last).role().equals("user")) {
        out.set(last, new Message("user", out.get(last).content() + "\n\n" + m.content()));
      } else {
        out.add(m);
      }
    }
    return out;
  }

  private static int firstDiff(String a, String b) {
    int n = Math.min(a.length(), b.length());
    for (int i = 0; i < n; i++) {
      if (a.charAt(i) != b.charAt(i)) {
        return i;
      }
    }
    return n;
  }

  private static IllegalArgumentException notStable(JinjaChatTemplate t, int turn, String why) {
    return new IllegalArgumentException(t.source() + ": chat_template is not prefix-stable at messages[" + turn
        + "] (assistant): " + why + "; the loss mask needs each assistant turn to extend its prompt");
  }
}
