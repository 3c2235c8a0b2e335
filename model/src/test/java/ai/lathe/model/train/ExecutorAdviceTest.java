package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.nn.QuantMode;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The jobs' executor advice splits MemoryEstimate's total as Spark splits a container: the heap
 * (spark.executor.memory) holds the NF4 codes the quantised weights really take plus the working
 * heap; the overhead holds the rest; a dense base puts nothing beyond the JVM's working heap there.
 */
class ExecutorAdviceTest {
  static final LlamaConfig C = MemoryEstimateNf4Test.C;
  static final LlamaConfig L1B = LlamaConfig.family("llama3", 128256, 2048, 16, 32, 8, 8192, 64, 500000.0, true,
      8192, 0);

  @Test
  void nf4CodesGoToTheHeapAndTheRestToTheOverhead() {
    for (boolean dq : new boolean[] {false, true}) {
      QuantMode q = dq ? QuantMode.NF4_DQ : QuantMode.NF4;
      LlamaWeights w = RandomLlama.create(C, 1, 0.02, 0, DataType.FLOAT).quantizeNf4(dq);
      MemoryEstimate e = MemoryEstimate.of(C, 4, q, 2, 16, false).withTrainable(1000);
      ExecutorAdvice a = ExecutorAdvice.of(e, C, q);
      // the codes and scales the quantised weights hold, counted independently of the estimate
      assertEquals(w.projectionBytes() + MemoryEstimate.WORKING_HEAP_BYTES, a.heapBytes(),
          dq ? 0.01 * w.projectionBytes() : 0, "double quant " + dq);
      assertEquals(e.totalBytes(), a.heapBytes() + a.overheadBytes());
      assertEquals(e.scratchBytes() + e.activationBytes() + 16 * 1000, a.perExtraSlotBytes());
      // a tiny heap is raised to what Spark accepts; the overhead is not
      assertEquals(ExecutorAdvice.SPARK_MIN_HEAP_BYTES, a.executorMemoryBytes());
      assertTrue(a.line(e).contains("MiB NF4 codes + 320 MiB working heap, raised to Spark's minimum"), a.line(e));
    }
  }

  @Test
  void atOneBillionTheHeapIsTheCodesAndTheLineSaysBoth() {
    MemoryEstimate e = MemoryEstimate.of(L1B, 2, QuantMode.NF4, 1, 512, true);
    ExecutorAdvice a = ExecutorAdvice.of(e, L1B, QuantMode.NF4);
    // 16 layers x (q 2048^2 + k, v 512x2048 + o 2048^2 + gate, up, down 3 x 8192x2048) x 0.5625 bytes
    long proj = 16L * (2L * 2048 * 2048 + 2L * 512 * 2048 + 3L * 8192 * 2048);
    assertEquals((long) (proj * 0.5625) + MemoryEstimate.WORKING_HEAP_BYTES, a.heapBytes());
    assertEquals(a.heapBytes(), a.executorMemoryBytes());
    long heapMib = (a.heapBytes() + (1 << 20) - 1) >> 20;
    long overMib = (e.totalBytes() - a.heapBytes() + (1 << 20) - 1) >> 20;
    String line = a.line(e);
    assertTrue(line.startsWith("recommended spark.executor.memory >= " + heapMib + "m (heap: "
        + (heapMib - 320) + " MiB NF4 codes + 320 MiB working heap) and spark.executor.memoryOverhead >= "
        + overMib + "m (off-heap) for one task slot"), line);
  }

  @Test
  void aDenseBaseHasNoHeapTermBeyondTheJvmBaseline() {
    for (int weightBytes : new int[] {2, 4}) {
      MemoryEstimate e = MemoryEstimate.of(L1B, weightBytes, QuantMode.NONE, 1, 512, false);
      ExecutorAdvice a = ExecutorAdvice.of(e, L1B, QuantMode.NONE);
      assertEquals(MemoryEstimate.WORKING_HEAP_BYTES, a.heapBytes());
      assertEquals(e.totalBytes() - MemoryEstimate.WORKING_HEAP_BYTES, a.overheadBytes());
      assertTrue(a.overheadBytes() > e.frozenBytes(), "the dense weights are off-heap");
      assertTrue(a.line(e).contains("spark.executor.memory >= 450m (heap: no weights on the heap, 320 MiB working "
          + "heap, raised to Spark's minimum)"), a.line(e));
    }
  }

  /** train.mode full at 1B: the engine's copy, gradient and moments off-heap, the broadcast state on the heap. */
  @Test
  void fullModeCountsTheTrainedWeightsOnAndOffTheHeap() {
    long n = L1B.parameterCount();
    MemoryEstimate base = MemoryEstimate.of(L1B, 2, QuantMode.NONE, 1, 512, false);
    MemoryEstimate e = base.withTrainable(n);
    for (boolean moments : new boolean[] {false, true}) {
      long state = 4 * n * (moments ? 3 : 1);
      ExecutorAdvice a = ExecutorAdvice.of(e, L1B, QuantMode.NONE, state);
      assertEquals(MemoryEstimate.WORKING_HEAP_BYTES + state, a.heapBytes());
      assertEquals(e.totalBytes() - MemoryEstimate.WORKING_HEAP_BYTES, a.overheadBytes());
      assertEquals(base.totalBytes() + 16 * n, e.totalBytes(), "value, gradient and two moments per weight");
      assertEquals(e.totalBytes() + state, a.heapBytes() + a.overheadBytes());
      long stateMib = (state + (1 << 20) - 1) >> 20;
      assertTrue(a.line(e).contains("(heap: no weights on the heap, " + stateMib
          + " MiB trained state (broadcast) + 320 MiB working heap)"), a.line(e));
    }
  }
}
