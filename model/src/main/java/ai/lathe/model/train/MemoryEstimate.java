package ai.lathe.model.train;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.nn.HalfLinear;
import ai.lathe.model.nn.LmHeadLoss;
import ai.lathe.model.nn.QuantMode;
import java.util.HashSet;
import java.util.Set;

/**
 * Resident memory of one training or scoring engine, from the shapes alone: the frozen weights as
 * held (16-bit checkpoints stay 16-bit, F32 stays F32, NF4 projections at 0.5625 or 0.516
 * bytes/param), the per-thread widening scratch (one F32 copy per distinct projection shape, at
 * most {@link HalfLinear#TILE_ELEMS} elements), the F32 activations the model's workspace holds for
 * one (batch, seq) shape (every layer's, or with checkpointing each layer's input plus one layer's),
 * one chunk of LM-head logits, and the JVM with ND4J's native libraries. Adapter activations
 * (A·x per module, r columns) are small and not counted.
 */
public record MemoryEstimate(long frozenBytes, long scratchBytes, long activationBytes, long runtimeBytes,
    long trainableBytes) {
  /** The JVM, its heap in use and ND4J/oneDNN native code, as measured by bench on small shapes. */
  public static final long RUNTIME_BYTES = 700L << 20;

  public long totalBytes() {
    return frozenBytes + scratchBytes + activationBytes + runtimeBytes + trainableBytes;
  }

  /** weightBytes: bytes per stored weight of the checkpoint (2 for BF16/F16, 4 for F32). */
  public static MemoryEstimate of(LlamaConfig c, int weightBytes, QuantMode quant, int batch, int seq,
      boolean checkpointing) {
    long d = c.hiddenSize();
    long proj = 0;
    long scratch = 0;
    long largest = 0; // NF4: one flat scratch per thread, the largest projection (Nf4Linear)
    Set<String> shapes = new HashSet<>();
    for (String m : LlamaWeights.MODULES) {
      int[] s = c.moduleShape(m);
      proj += (long) s[0] * s[1];
      largest = Math.max(largest, (long) s[0] * s[1]);
      long tileRows = Math.max(1, Math.min(s[0], HalfLinear.TILE_ELEMS / s[1]));
      if (quant == QuantMode.NONE && weightBytes < 4 && shapes.add(tileRows + "x" + s[1])) {
        scratch += 4 * tileRows * s[1];
      }
    }
    if (quant != QuantMode.NONE) {
      scratch += 4 * largest;
    }
    proj *= c.numLayers();
    long rest = c.parameterCount() - proj;
    double projBytes = quant == QuantMode.NONE ? weightBytes : quant.doubleQuant() ? 0.516 : 0.5625;
    long frozen = (long) (proj * projBytes) + rest * weightBytes;
    if (weightBytes < 4) { // the head widens in tiles too
      scratch += 4L * Math.max(1, Math.min(c.vocabSize(), HalfLinear.TILE_ELEMS / d)) * d;
    }
    return new MemoryEstimate(frozen, scratch, 4 * activationFloats(c, batch, seq, checkpointing), RUNTIME_BYTES, 0);
  }

  /** Floats of LlamaModel's workspace for one (batch, seq) shape (see LlamaModel.Workspace). */
  public static long activationFloats(LlamaConfig c, int batch, int seq, boolean checkpointing) {
    long n = (long) batch * seq;
    long d = c.hiddenSize();
    long qd = c.qDim();
    long kvd = c.kvDim();
    long f = c.intermediateSize();
    long scores = (long) batch * c.numHeads() * seq * seq; // attention probabilities of one layer
    long perLayer = n * d * 3 + n * 2 + n * qd * 2 + n * kvd * 2 + scores + 3 * n * f
        + (c.qkNorm() ? n * qd + n * kvd + n * (c.numHeads() + c.numKvHeads()) : 0);
    long layers = checkpointing ? perLayer : perLayer * c.numLayers();
    long inputs = (c.numLayers() + 1) * n * d;
    long fixed = n * qd * 2 + n * kvd * 2 + n * d * 3 + n // qLin kLin vLin oh tmpD xnF xnG rstdF
        + n * d * 4 + 3 * n * f + n * qd * 4 + n * kvd * 4 + scores // backward scratch
        + (c.qkNorm() ? n * qd + n * kvd : 0)
        + (c.numHeads() > c.numKvHeads() ? 2 * n * qd : 0); // per-query-head dK, dV (GQA)
    // one chunk of logits, and the head's input gradient a training forward prepares ([n, d])
    long head = Math.min(n, LmHeadLoss.defaultChunkRows(c.vocabSize())) * (long) c.vocabSize() + n * d;
    return layers + inputs + fixed + head;
  }

  /**
   * The same with trainable parameters (adapters): each held as F32 weight, gradient and AdamW's
   * two moments, 16 bytes per parameter (0 for scoring).
   */
  public MemoryEstimate withTrainable(long params) {
    return new MemoryEstimate(frozenBytes, scratchBytes, activationBytes, runtimeBytes, 16 * params);
  }

  /** Heap beyond the NF4 codes: tokenizer.json parsed, data, adapters' bookkeeping, GC headroom. */
  public static final long WORKING_HEAP_BYTES = 320L << 20;

  /**
   * The Java heap to give a JVM holding this model (-Xmx): NF4 codes and block scales live on the
   * heap, everything else off it. A larger heap only adds resident memory (garbage waits longer).
   */
  public static long heapBytes(LlamaConfig c, QuantMode quant) {
    long proj = 0;
    for (String m : LlamaWeights.MODULES) {
      int[] s = c.moduleShape(m);
      proj += (long) s[0] * s[1];
    }
    double bytesPerParam = quant == QuantMode.NONE ? 0 : quant.doubleQuant() ? 0.516 : 0.5625;
    return (long) (proj * c.numLayers() * bytesPerParam) + WORKING_HEAP_BYTES;
  }

  /** One line for a job's log: the parts and the total in MiB. */
  public String describe() {
    return String.format("frozen %d MiB + widening scratch %d MiB + activations %d MiB + trainable %d MiB"
        + " + JVM/native %d MiB = %d MiB", frozenBytes >> 20, scratchBytes >> 20, activationBytes >> 20,
        trainableBytes >> 20, runtimeBytes >> 20, totalBytes() >> 20);
  }
}
