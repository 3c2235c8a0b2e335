package ai.lathe.model.cli;

import ai.lathe.model.gen.Generation;
import ai.lathe.model.gen.Generator;
import ai.lathe.model.gen.Sampling;
import ai.lathe.model.gen.StopTokens;
import ai.lathe.model.io.AtomicDir;
import ai.lathe.model.io.LocalStore;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.nn.Par;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.ChatTemplate.Message;
import ai.lathe.model.text.GenerationPrompt;
import ai.lathe.model.text.JsonlData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code lathe generate}: completions of prompts under a model (and adapter), batched with a KV
 * cache. Each input row is {"prompt": text} or {"messages": [...] ending with a user turn}, with an
 * optional id; it is rendered through the chat template with the generation prompt.
 */
public final class GenerateCommand {
  public static final String USAGE = """
      usage: lathe generate --model DIR [--adapter DIR] [--quantize nf4 [--double-quant]] --input prompts.jsonl
                            --output out.jsonl [--max-new-tokens 256] [--temperature 0] [--top-k 0] [--top-p 1]
                            [--seed 0] [--stop STR ...] [--template model|none|llama2|chatml|alpaca]
                            [--batch 8] [--precision float|double] [--threads N] [--overwrite] [--allow-empty]
        Input rows: {"prompt": "..."} or {"messages": [{"role": ..., "content": ...}, ...]} (ending with a
        user turn), each with an optional "id". Temperature 0 is greedy; top-k 0 and top-p 1 are off.
        Generation stops at the model's end ids (generation_config.json / config.json eos_token_id,
        tokenizer_config.json eos_token), at any --stop string, or after --max-new-tokens.
        Output rows: id, prompt (the rendered prompt text), completion (the text before any stop
        string, without the end id), tokens (every new id, the end id included), finish_reason
        (stop | length). A row's sample depends on --seed and its line, not on --batch.""";

  private GenerateCommand() {}

  /** One prompt: its id, the rendered text and its tokens. */
  record Item(JsonNode id, String text, int[] ids) {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("generate", argv, Set.of("double-quant", "overwrite", "allow-empty")).allow(Set.of("model",
        "adapter", "quantize", "input", "output", "max-new-tokens", "temperature", "top-k", "top-p", "seed", "stop",
        "template", "batch", "precision", "threads"));
    Loaded.checkChoices(a);
    Path input = a.path("input");
    Path output = a.path("output");
    List<OutputGuard.Input> ins = new ArrayList<>(List.of(OutputGuard.Input.of("model", a.path("model").toString()),
        OutputGuard.Input.of("input", input.toString())));
    if (a.has("adapter")) {
      ins.add(OutputGuard.Input.of("adapter", a.path("adapter").toString()));
    }
    Sampling s;
    try {
      s = new Sampling(a.integer("max-new-tokens", 256), a.number("temperature", 0), a.integer("top-k", 0),
          a.number("top-p", 1.0), null, a.all("stop"));
    } catch (IllegalArgumentException e) {
      throw new Args.UsageException("generate: " + e.getMessage());
    }
    int bsz = a.integer("batch", 8);
    if (bsz < 1) {
      throw new Args.UsageException("generate: --batch must be >= 1, got " + bsz);
    }
    try (var lease = OutputGuard.acquire(LocalStore.INSTANCE, new OutputGuard.Spec("generate", output.toString(),
        OutputGuard.Kind.GENERATIONS, a.flag("overwrite"), ins))) {
      return generate(a, s, bsz, input, output);
    }
  }

  private static int generate(Args a, Sampling base, int bsz, Path input, Path output) throws Exception {
    DataType dt = a.choice("precision", "float", List.of("float", "double")).equals("double") ? DataType.DOUBLE : DataType.FLOAT;
    Par.setThreads(a.integer("threads", Runtime.getRuntime().availableProcessors()));
    Path modelDir = a.path("model");
    ChatTemplate template = ChatTemplate.of(a.str("template", ChatTemplate.defaultName(modelDir, "none")));
    long seed;
    try {
      seed = Long.parseLong(a.str("seed", "0"));
    } catch (NumberFormatException e) {
      throw new Args.UsageException("generate: --seed must be an integer, got '" + a.str("seed", "") + "'");
    }
    try (Loaded l = Loaded.open(modelDir, a.has("adapter") ? a.path("adapter") : null, dt, true,
        a.choice("quantize", "none", List.of("none", "nf4")), a.flag("double-quant"))) {
      int maxPos = l.model().config().maxPositionEmbeddings();
      List<Item> items = new ArrayList<>();
      JsonlData.forEach(input, r -> items.add(item(r, input, l, template, maxPos, items.size())));
      if (items.isEmpty() && !a.flag("allow-empty")) {
        throw new IllegalArgumentException(input + ": no prompts; " + output + " was not touched (--allow-empty"
            + " writes an empty file)");
      }
      Sampling s = new Sampling(base.maxNewTokens(), base.temperature(), base.topK(), base.topP(),
          StopTokens.read(modelDir, l.tokenizer().eosId()), base.stopStrings());
      Generator g = new Generator(l.model());
      List<Generation> gens = new ArrayList<>();
      long t0 = System.nanoTime();
      for (int lo = 0; lo < items.size(); lo += bsz) {
        List<Item> chunk = items.subList(lo, Math.min(items.size(), lo + bsz));
        List<int[]> prompts = new ArrayList<>();
        long[] seeds = new long[chunk.size()];
        for (int i = 0; i < chunk.size(); i++) {
          prompts.add(chunk.get(i).ids());
          seeds[i] = Generator.promptSeed(seed, lo + i);
        }
        gens.addAll(g.generate(prompts, s, seeds, l.tokenizer()::decode));
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      ObjectMapper om = new ObjectMapper();
      long newTokens = 0;
      for (Generation x : gens) {
        newTokens += x.tokens().length;
      }
      AtomicDir.writeFile(output, tmp -> {
        try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
          for (int i = 0; i < items.size(); i++) {
            Generation x = gens.get(i);
            ObjectNode o = om.createObjectNode();
            o.set("id", items.get(i).id());
            o.put("prompt", items.get(i).text());
            o.put("completion", completion(l.tokenizer()::decode, x, s));
            var arr = o.putArray("tokens");
            for (int t : x.tokens()) {
              arr.add(t);
            }
            o.put("finish_reason", x.finishReason());
            w.write(om.writeValueAsString(o));
            w.write('\n');
          }
        }
      });
      System.out.printf("generated %d rows, %d new tokens in %.1f s (%.1f tokens/s) -> %s%n", items.size(),
          newTokens, secs, newTokens / Math.max(secs, 1e-9), output);
    }
    return 0;
  }

  /** The reply's text: without a final end id, cut before the first stop string. */
  static String completion(java.util.function.Function<int[], String> decode, Generation g, Sampling s) {
    int[] t = g.tokens();
    int n = t.length;
    if (n > 0 && g.finishReason().equals(Generation.STOP)) {
      for (int id : s.stopIds()) {
        if (t[n - 1] == id) {
          n--;
          break;
        }
      }
    }
    String text = decode.apply(java.util.Arrays.copyOf(t, n));
    int cut = text.length();
    for (String stop : s.stopStrings()) {
      int at = text.indexOf(stop);
      if (at >= 0) {
        cut = Math.min(cut, at);
      }
    }
    return text.substring(0, cut);
  }

  private static Item item(JsonlData.Row r, Path file, Loaded l, ChatTemplate template, int maxPos, int index) {
    String at = file + ":" + r.line() + ": ";
    JsonNode j = r.json();
    List<Message> messages = new ArrayList<>();
    if (j.has("messages")) {
      JsonNode arr = j.get("messages");
      if (!arr.isArray() || arr.isEmpty()) {
        throw new IllegalArgumentException(at + "field 'messages' must be a non-empty array of {role, content}");
      }
      for (int i = 0; i < arr.size(); i++) {
        JsonNode m = arr.get(i);
        JsonNode role = m.get("role");
        JsonNode content = m.get("content");
        if (role == null || !role.isTextual() || content == null || !content.isTextual()) {
          throw new IllegalArgumentException(at + "field 'messages'[" + i + "] needs string fields role and content");
        }
        if (!Set.of("system", "user", "assistant").contains(role.asText())) {
          throw new IllegalArgumentException(at + "field 'messages'[" + i + "].role = '" + role.asText()
              + "' is not system, user or assistant");
        }
        messages.add(new Message(role.asText(), content.asText()));
      }
      if (!messages.get(messages.size() - 1).role().equals("user")) {
        throw new IllegalArgumentException(at + "field 'messages' must end with a user turn (the one to answer)");
      }
    } else {
      JsonNode p = j.get("prompt");
      if (p == null || !p.isTextual()) {
        throw new IllegalArgumentException(at + "field 'prompt' must be a string (or give 'messages')");
      }
      if (p.asText().isEmpty()) {
        throw new IllegalArgumentException(at + "field 'prompt' is empty");
      }
      messages.add(new Message("user", p.asText()));
    }
    GenerationPrompt.Prompt pr;
    try {
      pr = GenerationPrompt.of(l.tokenizer(), template, messages);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(at + e.getMessage(), e);
    }
    if (pr.ids().length == 0) {
      throw new IllegalArgumentException(at + "the prompt renders to no tokens");
    }
    if (pr.ids().length > maxPos) {
      throw new IllegalArgumentException(at + "the prompt has " + pr.ids().length
          + " tokens, more than the model's max_position_embeddings " + maxPos);
    }
    JsonNode id = j.has("id") ? j.get("id") : new ObjectMapper().getNodeFactory().numberNode(index);
    return new Item(id, pr.text(), pr.ids());
  }
}
