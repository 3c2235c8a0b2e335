package ai.lathe.model.train;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.nn.QuantMode;

/**
 * The Spark executor memory a job advises, split as Spark splits an executor's container:
 * {@code spark.executor.memory} is the Java heap (-Xmx), {@code spark.executor.memoryOverhead}
 * everything else the process holds. The rule, from {@link MemoryEstimate}: the heap holds the NF4
 * codes and block scales (none for a dense base) plus the working heap; the rest of the estimate
 * (frozen dense weights, widening scratch, activations, trainable state, JVM and native code) is
 * off-heap, so heap + overhead = the estimate's total resident memory (plus the broadcast trained
 * state, on the heap). The base is loaded once per
 * executor JVM; each further task slot adds its own scratch, activations and trainable state,
 * off-heap. One wording for every job (sft, dpo, kto, ref-logps).
 */
public record ExecutorAdvice(long heapBytes, long overheadBytes, long perExtraSlotBytes, long stateHeapBytes) {
  /** Spark refuses an executor heap below 1.5 x its 300 MiB reserved memory (UnifiedMemoryManager). */
  public static final long SPARK_MIN_HEAP_BYTES = 450L << 20;

  public ExecutorAdvice {
    if (heapBytes <= 0 || overheadBytes <= 0 || perExtraSlotBytes < 0 || stateHeapBytes < 0) {
      throw new IllegalArgumentException("executor advice: heap " + heapBytes + ", overhead " + overheadBytes
          + ", per extra slot " + perExtraSlotBytes + ", state " + stateHeapBytes + " bytes");
    }
  }

  /** The split of e, an estimate for a model of shape c held with quant. */
  public static ExecutorAdvice of(MemoryEstimate e, LlamaConfig c, QuantMode quant) {
    return of(e, c, quant, 0);
  }

  /**
   * As above, with the trained state a task receives by broadcast and sends back (Java float
   * arrays, on the heap): stateHeapBytes, one copy per executor. Small for adapters; for train.mode
   * full it is every trained weight (with AdamW's moments when they are averaged too).
   */
  public static ExecutorAdvice of(MemoryEstimate e, LlamaConfig c, QuantMode quant, long stateHeapBytes) {
    long heap = MemoryEstimate.heapBytes(c, quant);
    return new ExecutorAdvice(heap + stateHeapBytes, e.totalBytes() - heap,
        e.scratchBytes() + e.activationBytes() + e.trainableBytes(), stateHeapBytes);
  }

  /** What to set spark.executor.memory to at least: the heap, and never under Spark's own minimum. */
  public long executorMemoryBytes() {
    return Math.max(heapBytes, SPARK_MIN_HEAP_BYTES);
  }

  /** MiB, rounded up, as Spark's memory settings take them. */
  static long mib(long bytes) {
    return (bytes + (1L << 20) - 1) >> 20;
  }

  /** The advice in one line (after "job: "), then what the estimate is made of. */
  public String line(MemoryEstimate e) {
    long codes = heapBytes - stateHeapBytes - MemoryEstimate.WORKING_HEAP_BYTES;
    String heap = (codes > 0 ? mib(codes) + " MiB NF4 codes + " : "no weights on the heap, ")
        + (stateHeapBytes >= 1L << 20 ? mib(stateHeapBytes) + " MiB trained state (broadcast) + " : "")
        + mib(MemoryEstimate.WORKING_HEAP_BYTES) + " MiB working heap"
        + (executorMemoryBytes() > heapBytes ? ", raised to Spark's minimum" : "");
    return String.format("recommended spark.executor.memory >= %dm (heap: %s) and spark.executor.memoryOverhead "
        + ">= %dm (off-heap) for one task slot, +%d MiB overhead per further slot (spark.executor.cores); "
        + "resident in all: %s", mib(executorMemoryBytes()), heap, mib(overheadBytes), mib(perExtraSlotBytes),
        e.describe());
  }
}
