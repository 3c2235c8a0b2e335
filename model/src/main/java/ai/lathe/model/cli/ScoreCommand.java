package ai.lathe.model.cli;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.io.AtomicDir;
import ai.lathe.model.io.LocalStore;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.nn.Par;
import ai.lathe.model.text.ChatTemplate;
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
 * {@code lathe score}: the sum of log-probabilities of each row's completion tokens under a model
 * (and adapter). Rows hold prompt and completion text, or input_ids and completion_start.
 */
public final class ScoreCommand {
  public static final String USAGE = """
      usage: lathe score --model DIR [--adapter DIR] --input rows.jsonl --output out.jsonl
                         [--template model|none|llama2|chatml|alpaca] [--batch 8] [--precision float|double]
                         [--threads N] [--quantize nf4 [--double-quant]]
        --quantize nf4 holds the base's projections in bitsandbytes' NF4 (QLoRA; an adapter trained
        on an NF4 base should be scored on one). PEFT LoRA and DoRA adapters both load.
        Each input row has prompt and completion (text), or input_ids and completion_start.
        Each output row repeats the input and adds logprob (sum of log p over the completion
        tokens) and num_tokens (how many completion tokens were scored).""";

  private ScoreCommand() {}

  /** One example to score: the row it came from, its ids and its first completion position. */
  record Item(ObjectNode row, int[] ids, boolean[] train) {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("score", argv, Set.of("double-quant", "overwrite", "allow-empty")).allow(Set.of("model", "adapter", "input", "output", "template",
        "batch", "precision", "threads", "quantize"));
    Loaded.checkChoices(a);
    Path input = a.path("input");
    Path output = a.path("output");
    java.util.List<OutputGuard.Input> ins = new ArrayList<>(java.util.List.of(
        OutputGuard.Input.of("model", a.path("model").toString()), OutputGuard.Input.of("input", input.toString())));
    if (a.has("adapter")) {
      ins.add(OutputGuard.Input.of("adapter", a.path("adapter").toString()));
    }
    try (var lease = OutputGuard.acquire(LocalStore.INSTANCE, new OutputGuard.Spec("score", output.toString(),
        OutputGuard.Kind.SCORES, a.flag("overwrite"), ins))) {
      return score(a, input, output);
    }
  }

  private static int score(Args a, Path input, Path output) throws Exception {
    DataType dt = a.choice("precision", "float", List.of("float", "double")).equals("double") ? DataType.DOUBLE : DataType.FLOAT;
    Par.setThreads(a.integer("threads", Runtime.getRuntime().availableProcessors()));
    ChatTemplate template = ChatTemplate.of(a.str("template", ChatTemplate.defaultName(a.path("model"), "none")));
    int bsz = a.integer("batch", 8);
    try (Loaded l = Loaded.open(a.path("model"), a.has("adapter") ? a.path("adapter") : null, dt, false,
        a.choice("quantize", "none", List.of("none", "nf4")), a.flag("double-quant"))) {
      List<Item> items = new ArrayList<>();
      int vocab = l.model().config().vocabSize();
      int maxPos = l.model().config().maxPositionEmbeddings();
      JsonlData.forEach(input, r -> items.add(item(r, input, l, template, vocab, maxPos)));
      if (items.isEmpty() && !a.flag("allow-empty")) {
        throw new IllegalArgumentException(input + ": no rows to score; " + output + " was not touched (--allow-empty"
            + " writes an empty file)");
      }
      l.model().setGradientCheckpointing(true); // forward only: one set of layer buffers shared by all layers
      int longest = items.stream().mapToInt(it -> it.ids().length).max().orElse(1);
      HeapAdvice.printEstimate(l.model().weights(), Math.min(bsz, Math.max(1, items.size())),
          Math.min(maxPos, (longest + 15) / 16 * 16), true, 0);
      double[] lp = score(l.model(), items, bsz);
      ObjectMapper om = new ObjectMapper();
      AtomicDir.writeFile(output, tmp -> {
        try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
          for (int i = 0; i < items.size(); i++) {
            ObjectNode o = items.get(i).row().deepCopy();
            o.put("logprob", lp[i]);
            int n = 0;
            for (int t = 1; t < items.get(i).train().length; t++) {
              n += items.get(i).train()[t] ? 1 : 0;
            }
            o.put("num_tokens", n);
            w.write(om.writeValueAsString(o));
            w.write('\n');
          }
        }
      });
      System.out.printf("scored %d rows -> %s%n", items.size(), output);
    }
    return 0;
  }

  private static Item item(JsonlData.Row r, Path file, Loaded l, ChatTemplate template, int vocab, int maxPos) {
    String at = file + ":" + r.line() + ": ";
    JsonNode j = r.json();
    int[] ids;
    boolean[] train;
    if (j.has("input_ids")) {
      JsonNode arr = j.get("input_ids");
      if (!arr.isArray() || arr.isEmpty()) {
        throw new IllegalArgumentException(at + "field 'input_ids' must be a non-empty array of integers");
      }
      ids = new int[arr.size()];
      for (int i = 0; i < ids.length; i++) {
        JsonNode v = arr.get(i);
        if (!v.canConvertToInt() || !v.isIntegralNumber() || v.asInt() < 0 || v.asInt() >= vocab) {
          throw new IllegalArgumentException(at + "field 'input_ids'[" + i + "] = " + v + " is not a token id below "
              + vocab);
        }
        ids[i] = v.asInt();
      }
      JsonNode cs = j.get("completion_start");
      if (cs == null || !cs.isIntegralNumber() || cs.asInt() < 1 || cs.asInt() > ids.length) {
        throw new IllegalArgumentException(at + "field 'completion_start' must be an integer in [1, " + ids.length + "]");
      }
      train = new boolean[ids.length];
      for (int i = cs.asInt(); i < ids.length; i++) {
        train[i] = true;
      }
    } else {
      if (l.tokenizer() == null) {
        throw new IllegalArgumentException(at + "text rows need tokenizer.json in the model folder");
      }
      String prompt = text(j, "prompt", at);
      String completion = text(j, "completion", at);
      ChatTemplate.Tokens t = template.tokenize(l.tokenizer(), prompt, completion);
      ids = t.ids();
      train = t.train();
    }
    if (ids.length > maxPos) {
      throw new IllegalArgumentException(at + ids.length + " tokens exceed max_position_embeddings " + maxPos);
    }
    return new Item((ObjectNode) j, ids, train);
  }

  private static String text(JsonNode j, String f, String at) {
    JsonNode v = j.get(f);
    if (v == null || !v.isTextual()) {
      throw new IllegalArgumentException(at + "field '" + f + "' must be a string (or give input_ids)");
    }
    return v.asText();
  }

  /** Scores items in length-sorted batches; returns log-probs in input order. */
  static double[] score(LlamaModel m, List<Item> items, int bsz) {
    Integer[] order = new Integer[items.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    java.util.Arrays.sort(order, (x, y) -> Integer.compare(items.get(x).ids().length, items.get(y).ids().length));
    double[] out = new double[items.size()];
    int lastSeq = -1;
    for (int s = 0; s < order.length; s += bsz) {
      int e = Math.min(order.length, s + bsz);
      List<int[]> ids = new ArrayList<>();
      List<boolean[]> masks = new ArrayList<>();
      int max = 1;
      for (int k = s; k < e; k++) {
        Item it = items.get(order[k]);
        ids.add(it.ids());
        masks.add(it.train());
        max = Math.max(max, it.ids().length);
      }
      int seq = Math.min(m.config().maxPositionEmbeddings(), ((max + 15) / 16) * 16);
      if (seq != lastSeq) {
        m.releaseWorkspaces(); // lengths only grow: never keep activations for a smaller shape
        lastSeq = seq;
      }
      Batch b = Batch.ofMasks(ids, masks, seq, 0);
      double[] lp = m.sequenceLogProbs(b);
      for (int k = s; k < e; k++) {
        out[order[k]] = lp[k - s];
      }
    }
    return out;
  }
}
