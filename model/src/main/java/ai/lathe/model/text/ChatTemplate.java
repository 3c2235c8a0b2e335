package ai.lathe.model.text;

import java.util.ArrayList;
import java.util.List;

/**
 * Renders a conversation into text and marks which characters are trained on (the assistant
 * turns, with their end-of-turn marker). Templates follow the published formats: Llama-2
 * {@code [INST]}, ChatML and Alpaca; {@code none} concatenates prompt and completion after BOS.
 * {@code model} renders the tokenizer's own Jinja chat_template ({@link JinjaChatTemplate}).
 */
public enum ChatTemplate {
  LLAMA2, CHATML, ALPACA, NONE, MODEL;

  /**
   * The template to use when none is configured: {@code model} when the tokenizer (a model folder
   * or its tokenizer.json) has a tokenizer_config.json with a chat_template, else {@code fallback}.
   */
  public static String defaultName(java.nio.file.Path tokenizer, String fallback) {
    try {
      return JinjaChatTemplate.load(tokenizer) != null ? "model" : fallback;
    } catch (java.io.IOException | RuntimeException e) {
      return fallback; // an unreadable config fails later, where the tokenizer is opened
    }
  }

  /** The names of() accepts (llama-2 and raw are other spellings of llama2 and none): the key check's list. */
  public static final List<String> NAMES = List.of("model", "llama2", "chatml", "alpaca", "none", "llama-2", "raw");

  public static ChatTemplate of(String name) {
    return switch (name.toLowerCase(java.util.Locale.ROOT)) {
      case "model" -> MODEL;
      case "llama2", "llama-2" -> LLAMA2;
      case "chatml" -> CHATML;
      case "alpaca" -> ALPACA;
      case "none", "raw" -> NONE;
      default -> throw new IllegalArgumentException("unknown chat template '" + name
          + "' (model, llama2, chatml, alpaca, none)");
    };
  }

  /** A turn of a conversation. */
  public record Message(String role, String content) implements java.io.Serializable {}

  /** Rendered text with the character ranges that carry loss. */
  public record Rendered(String text, List<int[]> trainRanges) {}

  private static final String ALPACA_NO_INPUT = "Below is an instruction that describes a task. "
      + "Write a response that appropriately completes the request.\n\n### Instruction:\n";
  private static final String ALPACA_WITH_INPUT = "Below is an instruction that describes a task, "
      + "paired with an input that provides further context. Write a response that appropriately "
      + "completes the request.\n\n### Instruction:\n";

  /**
   * Renders messages (roles system, user, assistant). Every assistant turn is trained on.
   * For ALPACA a single user turn is the instruction; an optional second user turn (or a
   * "input" role) is the input.
   */
  public Rendered render(List<Message> messages, String bos, String eos) {
    if (this == MODEL) {
      throw new IllegalStateException("template 'model' renders with its tokenizer: use tokenize(tok, messages)");
    }
    StringBuilder sb = new StringBuilder();
    List<int[]> train = new ArrayList<>();
    switch (this) {
      case LLAMA2 -> {
        String system = null;
        int i = 0;
        if (!messages.isEmpty() && messages.get(0).role().equals("system")) {
          system = messages.get(0).content().strip();
          i = 1;
        }
        for (; i < messages.size(); i++) {
          Message m = messages.get(i);
          if (m.role().equals("user")) {
            String u = m.content().strip();
            if (system != null) {
              u = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + u;
              system = null;
            }
            sb.append(bos).append("[INST] ").append(u).append(" [/INST]");
          } else if (m.role().equals("assistant")) {
            int s = sb.length();
            sb.append(' ').append(m.content().strip()).append(' ').append(eos);
            train.add(new int[] {s, sb.length()});
          } else {
            throw new IllegalArgumentException("llama2 template: unexpected role '" + m.role() + "'");
          }
        }
      }
      case CHATML -> {
        for (Message m : messages) {
          sb.append("<|im_start|>").append(m.role()).append('\n');
          int s = sb.length();
          sb.append(m.content()).append("<|im_end|>");
          if (m.role().equals("assistant")) {
            train.add(new int[] {s, sb.length()});
          }
          sb.append('\n');
        }
      }
      case ALPACA -> {
        String instruction = null;
        String input = "";
        String output = null;
        for (Message m : messages) {
          switch (m.role()) {
            case "system" -> { }
            case "user" -> {
              if (instruction == null) {
                instruction = m.content();
              } else {
                input = m.content();
              }
            }
            case "input" -> input = m.content();
            case "assistant" -> output = m.content();
            default -> throw new IllegalArgumentException("alpaca template: unexpected role '" + m.role() + "'");
          }
        }
        if (instruction == null) {
          throw new IllegalArgumentException("alpaca template: no instruction");
        }
        sb.append(bos);
        if (input.isBlank()) {
          sb.append(ALPACA_NO_INPUT).append(instruction).append("\n\n### Response:\n");
        } else {
          sb.append(ALPACA_WITH_INPUT).append(instruction).append("\n\n### Input:\n").append(input)
              .append("\n\n### Response:\n");
        }
        if (output != null) {
          int s = sb.length();
          sb.append(output).append(eos);
          train.add(new int[] {s, sb.length()});
        }
      }
      case MODEL -> { }
      case NONE -> {
        sb.append(bos);
        for (Message m : messages) {
          int s = sb.length();
          sb.append(m.content());
          if (m.role().equals("assistant")) {
            train.add(new int[] {s, sb.length()});
          }
        }
      }
    }
    return new Rendered(sb.toString(), train);
  }

  /** A tokenised example: ids, per token whether it carries loss, and (packed rows) positions restarting at 0 per example. */
  public record Tokens(int[] ids, boolean[] train, int[] positions) implements java.io.Serializable {
    /** An unpacked example: positions 0..n-1. */
    public Tokens(int[] ids, boolean[] train) {
      this(ids, train, null);
    }

    public int trainCount() {
      int n = 0;
      for (boolean b : train) {
        if (b) {
          n++;
        }
      }
      return n;
    }
  }

  /**
   * Renders and tokenises; a token is trained when its first character lies in a trained range.
   * MODEL: the tokenizer's chat_template, masked per assistant turn ({@link ModelTemplateTokens}).
   */
  public Tokens tokenize(HfTokenizer tok, List<Message> messages) {
    if (this == MODEL) {
      return ModelTemplateTokens.tokenize(tok, messages);
    }
    Rendered r = render(messages, tok.bosToken(), tok.eosToken());
    HfTokenizer.Encoded e = tok.encode(r.text());
    boolean[] train = new boolean[e.ids().length];
    for (int i = 0; i < train.length; i++) {
      int c = e.charStart()[i];
      for (int[] range : r.trainRanges()) {
        if (c >= range[0] && c < range[1]) {
          train[i] = true;
          break;
        }
      }
    }
    return new Tokens(e.ids(), train);
  }

  /** Prompt/completion pair as one user and one assistant turn. */
  public Tokens tokenize(HfTokenizer tok, String prompt, String completion) {
    return tokenize(tok, List.of(new Message("user", prompt), new Message("assistant", completion)));
  }
}
