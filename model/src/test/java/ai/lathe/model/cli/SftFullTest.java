package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.io.TrainedModel;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * sft-local with train.mode full: the loss falls, the output is a Hugging Face model folder
 * (also sharded) that scores through score's path exactly as the in-memory model, and bad input
 * (a freeze pattern naming nothing, an NF4 base) is one clear error with nothing written.
 */
class SftFullTest {
  static final Path TOK = Path.of("../data/tokenizer/llama2");

  static Path model(Path dir) throws Exception {
    LlamaConfig c = LlamaConfig.family("llama", 32000, 32, 2, 4, 2, 64, 0, 10000.0, false, 256, 0);
    RandomLlama.write(dir, c, 5, "F32", TOK);
    return dir;
  }

  /** 24 rows of distinct content (the split hashes the content, so duplicates would share one split). */
  static Path data(Path file) throws Exception {
    StringBuilder sb = new StringBuilder();
    String[] langs = {"en", "de", "fr"};
    for (int i = 0; i < 24; i++) {
      sb.append(String.format("{\"lang\": \"%s\", \"id\": \"%d\", \"instruction\": \"Count to %d\", \"input\": \"\","
          + " \"output\": \"one two three four %d\"}%n", langs[i % 3], i, i, i % 4));
    }
    Files.writeString(file, sb.toString());
    return file;
  }

  static List<ScoreCommand.Item> items(int vocab) {
    Random rng = new Random(2);
    List<ScoreCommand.Item> items = new ArrayList<>();
    for (int k = 0; k < 5; k++) {
      int[] ids = new int[6 + 3 * k];
      boolean[] train = new boolean[ids.length];
      for (int i = 0; i < ids.length; i++) {
        ids[i] = rng.nextInt(vocab);
        train[i] = i >= 3;
      }
      items.add(new ScoreCommand.Item(new ObjectMapper().createObjectNode(), ids, train));
    }
    return items;
  }

  @Test
  void fullSftWritesAModelThatScoresAsTheOneInMemory(@TempDir Path tmp) throws Exception {
    Path base = model(tmp.resolve("base"));
    Path out = tmp.resolve("out");
    Config c = Config.load(null, List.of("model=" + base, "data=" + data(tmp.resolve("d.jsonl")), "output=" + out,
        "train.mode=full", "train.max_steps=6", "train.seq_len=64", "train.lr=3e-3", "train.threads=1",
        "train.batch_size=4", "val_fraction=0.3"));
    LlamaModel[] mem = new LlamaModel[1];
    ObjectNode run = SftCommand.run(c, m -> mem[0] = m);
    var m = run.get("metrics");
    assertTrue(m.get("final_val_loss").asDouble() < m.get("initial_val_loss").asDouble() - 0.1, m.toString());
    assertEquals(2 * 32000 * 32 + 2 * (2 * 32 + 4 * 32 * 32 / 2 + 2 * 32 * 32 / 2 + 3 * 32 * 64) + 32,
        m.get("trainable_parameters").asLong(), "every weight: embed, head, 2 layers, final norm");
    for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "lathe-run.json", "metrics.jsonl")) {
      assertTrue(Files.exists(out.resolve(f)), f);
    }
    List<ScoreCommand.Item> items = items(32000);
    double[] inMemory = ScoreCommand.score(mem[0], items, 2);
    double[] baseScores;
    try (Loaded b = Loaded.open(base, null, DataType.FLOAT, true)) {
      baseScores = ScoreCommand.score(b.model(), items, 2);
    }
    try (Loaded l = Loaded.open(out, null, DataType.FLOAT, true)) {
      double[] written = ScoreCommand.score(l.model(), items, 2);
      for (int i = 0; i < items.size(); i++) {
        assertEquals(inMemory[i], written[i], 1e-5, "row " + i);
        assertTrue(Math.abs(written[i] - baseScores[i]) > 1e-3, "row " + i + " must differ from the base");
      }
    }
    // the same weights as a sharded folder (shards of ~1 MB) load and score the same
    Path sharded = tmp.resolve("sharded");
    TrainedModel.write(sharded, mem[0].weights(), "F32", 1 << 20, base, null, Map.of());
    assertTrue(Files.exists(sharded.resolve("model.safetensors.index.json")));
    try (Loaded l = Loaded.open(sharded, null, DataType.FLOAT, true)) {
      double[] written = ScoreCommand.score(l.model(), items, 2);
      for (int i = 0; i < items.size(); i++) {
        assertEquals(inMemory[i], written[i], 1e-5, "sharded row " + i);
      }
    }
  }

  static Object[] dispatch(String... argv) {
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      return new Object[] {Main.dispatch(argv, Main.COMMANDS), buf.toString(StandardCharsets.UTF_8)};
    } finally {
      System.setErr(err);
    }
  }

  @Test
  void badFreezeAndNf4BaseAreClearErrorsAndWriteNothing(@TempDir Path tmp) throws Exception {
    Path base = model(tmp.resolve("base"));
    Path d = data(tmp.resolve("d.jsonl"));
    Path out = tmp.resolve("out");
    Object[] r = dispatch("sft-local", "--set", "model=" + base, "--set", "data=" + d, "--set", "output=" + out,
        "--set", "train.mode=full", "--set", "train.freeze=[embed_tokenz]", "--set", "train.max_steps=1");
    assertEquals(1, r[0], (String) r[1]);
    assertTrue(((String) r[1]).contains("train.freeze: 'embed_tokenz' matches no tensor"), (String) r[1]);
    r = dispatch("sft-local", "--set", "model=" + base, "--set", "data=" + d, "--set", "output=" + out,
        "--set", "train.mode=full", "--set", "quantize=nf4", "--set", "train.max_steps=1");
    assertEquals(1, r[0], (String) r[1]);
    assertTrue(((String) r[1]).contains("a 4-bit base cannot be trained in full"), (String) r[1]);
    r = dispatch("sft-local", "--set", "model=" + base, "--set", "data=" + d, "--set", "output=" + out,
        "--set", "train.mode=fully", "--set", "train.max_steps=1");
    assertEquals(2, r[0], (String) r[1]); // a bad enumerated value: a usage error before any work
    assertTrue(((String) r[1]).contains("'train.mode' cannot be 'fully'"), (String) r[1]);
    assertTrue(!Files.exists(out), "nothing written");
  }
}
