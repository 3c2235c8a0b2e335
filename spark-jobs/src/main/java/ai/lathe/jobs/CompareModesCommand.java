package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.cli.Args;
import ai.lathe.model.cli.Loaded;
import ai.lathe.model.cli.SftCommand;
import ai.lathe.model.io.AtomicDir;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.HfTokenizer;
import ai.lathe.model.train.SftData;
import ai.lathe.model.train.SftTrainer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code lathe compare-modes}: LoRA vs DoRA vs full fine-tuning side by side, each trained by
 * sft-local on the same rows for the same steps from the same base. Reports per mode the
 * validation loss before and after, the loss on a general (replay) set before and after (its rise
 * is forgetting), trainable parameters, bytes on disk of the output and tokens/s, as
 * compare-modes.json and compare-modes.png (training loss per step) beside the three outputs.
 */
public final class CompareModesCommand {
  public static final String USAGE = """
      usage: lathe compare-modes --model DIR --output DIR [--data FILE] [--langs en] [--replay-langs de]
                                 [--steps 20] [--seq-len 128] [--batch 4] [--lr-lora 1e-3] [--lr-full 3e-4]
                                 [--modes lora,dora,full] [--template llama2] [--overwrite]
        Trains each mode with sft-local on the same data and steps (data: the bundled Debian FAQ;
        rows of --langs), scores a general set (rows of --replay-langs as plain text) before and
        after, and writes OUTPUT/{lora,dora,full}, OUTPUT/compare-modes.json and .png.""";

  private CompareModesCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("compare-modes", argv, Set.of("overwrite")).allow(Set.of("model", "output", "data", "langs",
        "replay-langs", "steps", "seq-len", "batch", "lr-lora", "lr-full", "modes", "template", "threads"));
    Path model = a.path("model");
    Path out = a.path("output");
    Path data = Path.of(a.str("data", "data/sample/debian-faq/instructions.jsonl"));
    List<String> modes = List.of(a.str("modes", "lora,dora,full").split(","));
    for (String m : modes) {
      if (!List.of("lora", "dora", "full").contains(m)) {
        throw new Args.UsageException("compare-modes: --modes lists lora, dora or full, not '" + m + "'");
      }
    }
    int seqLen = a.integer("seq-len", 128);
    int bsz = a.integer("batch", 4);
    List<ChatTemplate.Tokens> replay = replay(model, data, a.str("replay-langs", "de"), seqLen);
    double replayBefore;
    try (Loaded l = Loaded.open(model, null, DataType.FLOAT, true)) {
      replayBefore = SftTrainer.validationLoss(l.model(), replay, bsz, seqLen);
    }
    ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode report = om.createObjectNode();
    report.put("model", model.toString()).put("data", data.toString()).put("langs", a.str("langs", "en"))
        .put("replay_langs", a.str("replay-langs", "de")).put("steps", a.integer("steps", 20))
        .put("replay_rows", replay.size()).put("replay_loss_before", replayBefore);
    ArrayNode rows = report.putArray("modes");
    Map<String, List<double[]>> curves = new LinkedHashMap<>();
    for (String mode : modes) {
      Path dir = out.resolve(mode);
      List<String> sets = new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir,
          "data_langs=[" + a.str("langs", "en") + "]", "template=" + a.str("template", "llama2"),
          "train.max_steps=" + a.integer("steps", 20), "train.seq_len=" + seqLen, "train.batch_size=" + bsz,
          "train.threads=" + a.integer("threads", 0), "lora.dropout=0.0", "lora.target_modules=[all-linear]",
          "overwrite=" + a.flag("overwrite")));
      sets.add(mode.equals("full") ? "train.lr=" + a.number("lr-full", 3e-4) : "train.lr=" + a.number("lr-lora", 1e-3));
      sets.add(mode.equals("full") ? "train.mode=full" : "lora.use_dora=" + mode.equals("dora"));
      System.out.println("== compare-modes: " + mode);
      double[] replayAfter = new double[1];
      ObjectNode run = SftCommand.run(Config.load(null, sets),
          (LlamaModel m) -> replayAfter[0] = SftTrainer.validationLoss(m, replay, bsz, seqLen));
      var mt = run.get("metrics");
      rows.addObject().put("mode", mode).put("val_loss_before", mt.get("initial_val_loss").asDouble())
          .put("val_loss_after", mt.get("final_val_loss").asDouble()).put("replay_loss_before", replayBefore)
          .put("replay_loss_after", replayAfter[0]).put("forgetting", replayAfter[0] - replayBefore)
          .put("trainable_parameters", mt.get("trainable_parameters").asLong()).put("bytes_on_disk", bytes(dir))
          .put("tokens_per_s", mt.get("tokens_per_s").asDouble());
      curves.put(mode, AdapterOutput.series(lines(dir.resolve("metrics.jsonl")), "train_loss"));
    }
    AtomicDir.writeFile(out.resolve("compare-modes.json"), tmp -> om.writeValue(tmp.toFile(), report));
    AtomicDir.writeFile(out.resolve("compare-modes.png"), tmp -> LossPlot.write(tmp,
        "train loss: " + String.join(" vs ", modes), curves));
    System.out.printf("%-5s %10s %10s %12s %12s %14s %14s %10s%n", "mode", "val before", "val after", "replay bef.",
        "replay aft.", "trainable", "bytes", "tokens/s");
    rows.forEach(r -> System.out.printf("%-5s %10.4f %10.4f %12.4f %12.4f %,14d %,14d %10.0f%n", r.get("mode").asText(),
        r.get("val_loss_before").asDouble(), r.get("val_loss_after").asDouble(), r.get("replay_loss_before").asDouble(),
        r.get("replay_loss_after").asDouble(), r.get("trainable_parameters").asLong(), r.get("bytes_on_disk").asLong(),
        r.get("tokens_per_s").asDouble()));
    System.out.println("wrote " + out.resolve("compare-modes.json") + " and compare-modes.png");
    return 0;
  }

  /** The general set: rows of the replay languages as plain text (loss on the answers). */
  static List<ChatTemplate.Tokens> replay(Path model, Path data, String langs, int seqLen) throws IOException {
    try (HfTokenizer tok = HfTokenizer.open(model.resolve("tokenizer.json"))) {
      SftData d = SftData.load(data, "alpaca", null, ChatTemplate.of("none"), tok, seqLen, 0.0,
          Set.of(langs.split(",")), 0);
      if (d.train.isEmpty()) {
        throw new IllegalArgumentException(data + ": no rows of --replay-langs " + langs);
      }
      return d.train;
    }
  }

  static List<ObjectNode> lines(Path jsonl) throws IOException {
    List<ObjectNode> out = new ArrayList<>();
    ObjectMapper om = new ObjectMapper();
    for (String l : Files.readAllLines(jsonl)) {
      if (!l.isBlank()) {
        out.add((ObjectNode) om.readTree(l));
      }
    }
    return out;
  }

  static long bytes(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
  }
}
