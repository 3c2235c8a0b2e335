package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.nn.Nf4Linear;
import ai.lathe.model.nn.QuantMode;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** The memory advice for an NF4 base counts what the engine holds: its codes (the heap) and its scratch. */
class MemoryEstimateNf4Test {
  // q [64, 64], k/v [32, 64], gate/up [128, 64], down [64, 128]: four shapes, the largest 8192 values
  static final LlamaConfig C = new LlamaConfig("llama", 300, 64, 2, 4, 2, 128, 1e-5, 10000, false, 64, 1, 2);

  @Test
  void nf4ScratchIsOneLargestProjectionPerThread() throws Exception {
    LlamaWeights w = RandomLlama.create(C, 1, 0.02, 0, DataType.FLOAT).quantizeNf4(false);
    Thread t = new Thread(() -> {
      LlamaModel m = new LlamaModel(w, null, DataType.FLOAT);
      m.sequenceLogProbs(Batch.of(List.of(new int[] {1, 7, 99, 4, 250, 3}), new int[] {2}, 8, 0));
      // F32 checkpoint: no widening scratch besides NF4's
      assertEquals(MemoryEstimate.of(C, 4, QuantMode.NF4, 1, 8, true).scratchBytes(), Nf4Linear.threadScratchBytes());
      assertEquals(4L * 128 * 64, Nf4Linear.threadScratchBytes());
    });
    Throwable[] err = new Throwable[1];
    t.setUncaughtExceptionHandler((th, e) -> err[0] = e);
    t.start();
    t.join();
    if (err[0] != null) {
      throw new AssertionError(err[0]);
    }
  }

  @Test
  void heapAdviceHoldsTheCodesAndScales() {
    for (boolean dq : new boolean[] {false, true}) {
      LlamaWeights w = RandomLlama.create(C, 1, 0.02, 0, DataType.FLOAT).quantizeNf4(dq);
      long codes = MemoryEstimate.heapBytes(C, dq ? QuantMode.NF4_DQ : QuantMode.NF4) - MemoryEstimate.WORKING_HEAP_BYTES;
      // 0.5625 bytes/param is exact (n/2 codes + 4 bytes per 64); 0.516 rounds bitsandbytes' nested scales
      assertEquals(w.projectionBytes(), codes, dq ? 0.01 * codes : 0, "double quant " + dq);
    }
    assertEquals(MemoryEstimate.WORKING_HEAP_BYTES, MemoryEstimate.heapBytes(C, QuantMode.NONE));
  }

  @Test
  void trainableParametersCostSixteenBytes() {
    MemoryEstimate e = MemoryEstimate.of(C, 2, QuantMode.NF4, 1, 8, true);
    assertEquals(e.totalBytes() + 16 * 1000, e.withTrainable(1000).totalBytes());
  }
}
