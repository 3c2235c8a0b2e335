package ai.lathe.model.cli;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.nn.QuantMode;
import ai.lathe.model.train.MemoryEstimate;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Before an NF4 base is loaded: the Java heap it needs (its codes live on the heap), next to this
 * JVM's -Xmx. Too small a heap fails while loading; a much larger one only adds resident memory.
 */
final class HeapAdvice {
  private HeapAdvice() {}

  /** NF4 when asked for, or when the folder is pre-quantised (bitsandbytes quantization_config). */
  static QuantMode mode(Path modelDir, String quantize, boolean doubleQuant) throws IOException {
    if ("nf4".equals(quantize)) {
      return doubleQuant ? QuantMode.NF4_DQ : QuantMode.NF4;
    }
    JsonNode q = new ObjectMapper().readTree(modelDir.resolve("config.json").toFile()).path("quantization_config");
    if (q.path("load_in_4bit").asBoolean(false)) {
      return q.path("bnb_4bit_use_double_quant").asBoolean(false) ? QuantMode.NF4_DQ : QuantMode.NF4;
    }
    return QuantMode.NONE;
  }

  /** The advice line for an NF4 base (null for a dense one). */
  static String line(LlamaConfig c, QuantMode q, long maxHeap) {
    if (q == QuantMode.NONE) {
      return null;
    }
    long want = MemoryEstimate.heapBytes(c, q);
    String verdict = maxHeap < want ? "too small: loading may run out of heap"
        : maxHeap > 2 * want ? "larger than needed: the surplus only adds resident memory" : "fits";
    return String.format("memory: NF4 codes live on the Java heap; advised -Xmx%dm (LATHE_JAVA_OPTS), this JVM has "
        + "-Xmx%dm (%s)", (want >> 20) + 1, maxHeap >> 20, verdict);
  }

  /** Prints the advice for modelDir on stderr (nothing for a dense base or a folder without config.json). */
  static void print(Path modelDir, String quantize, boolean doubleQuant) throws IOException {
    if (!java.nio.file.Files.isRegularFile(modelDir.resolve("config.json"))) {
      return; // the loader reports the missing folder or file
    }
    String l = line(LlamaConfig.read(modelDir.resolve("config.json")), mode(modelDir, quantize, doubleQuant),
        Runtime.getRuntime().maxMemory());
    if (l != null) {
      System.err.println(l);
    }
  }

  /**
   * The resident-memory advice (MemoryEstimate, as the Spark jobs print it) for a loaded model at
   * one (batch, seq) shape, printed on stdout next to what the run then measures.
   */
  static void printEstimate(ai.lathe.model.LlamaWeights w, int batch, int seq, boolean checkpointing, long trainable) {
    QuantMode q = QuantMode.NONE;
    for (String m : ai.lathe.model.LlamaWeights.MODULES) {
      if (w.layers.length > 0 && w.layers[0].module(m) instanceof ai.lathe.model.nn.Nf4Linear n) {
        q = n.state().doubleQuant() ? QuantMode.NF4_DQ : QuantMode.NF4;
      }
    }
    int weightBytes = w.embed instanceof ai.lathe.model.nn.Buf.Half ? 2 : w.embed.arr.dataType().width();
    MemoryEstimate e = MemoryEstimate.of(w.config, weightBytes, q, batch, seq, checkpointing).withTrainable(trainable);
    System.out.printf("memory advice (batch %d, seq %d%s): %s%n", batch, seq,
        checkpointing ? ", checkpointing" : "", e.describe());
  }
}
