package ai.lathe.model.cli;

import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.text.HfTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;

/** A model folder loaded for use: weights, optional adapter and the tokenizer (checked to fit). */
public record Loaded(LlamaModel model, HfTokenizer tokenizer) implements AutoCloseable {

  /**
   * The enumerated options of the commands that load a model (score, generate), checked before any
   * work: --precision, --quantize and --template (one line, exit 2, naming the option and value).
   */
  static void checkChoices(Args a) {
    a.choice("precision", "float", java.util.List.of("float", "double"));
    a.choice("quantize", "none", java.util.List.of("none", "nf4"));
    a.choice("template", null, ai.lathe.model.text.ChatTemplate.NAMES);
  }

  /** Loads model (and adapter when not null); tokenizer required unless needTokenizer is false. */
  public static Loaded open(Path modelDir, Path adapterDir, DataType dt, boolean needTokenizer) throws IOException {
    return open(modelDir, adapterDir, dt, needTokenizer, "none", false);
  }

  /** As above, with the base's projections held as quantize (none | nf4), optionally double-quantised. */
  public static Loaded open(Path modelDir, Path adapterDir, DataType dt, boolean needTokenizer, String quantize,
      boolean doubleQuant) throws IOException {
    if (doubleQuant && !"nf4".equals(quantize)) {
      throw new IllegalArgumentException("--double-quant needs --quantize nf4");
    }
    HeapAdvice.print(modelDir, quantize, doubleQuant);
    // the tokenizer first: parsing tokenizer.json takes a few hundred MB of heap for a moment, which
    // is then free again for the weights (NF4 codes live on the heap)
    HfTokenizer tok = null;
    Path tj = modelDir.resolve("tokenizer.json");
    if (Files.exists(tj)) {
      tok = HfTokenizer.open(tj);
    } else if (needTokenizer) {
      throw new IOException(modelDir + ": tokenizer.json not found");
    }
    LlamaWeights w;
    try {
      if (tok != null) {
        tok.checkFits(ai.lathe.model.LlamaConfig.read(modelDir.resolve("config.json")).vocabSize(), modelDir);
      }
      w = HfCheckpoint.load(modelDir, dt, quantize == null ? "none" : quantize, doubleQuant);
    } catch (IOException | RuntimeException e) {
      if (tok != null) {
        tok.close();
      }
      throw e;
    }
    AdapterSet a = adapterDir == null ? null : PeftAdapter.read(adapterDir, w.config, dt);
    return new Loaded(new LlamaModel(w, a, dt), tok);
  }

  @Override
  public void close() {
    if (tokenizer != null) {
      tokenizer.close();
    }
  }
}
