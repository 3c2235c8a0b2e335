package ai.lathe.jobs;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.QuantMode;
import ai.lathe.model.train.ExecutorAdvice;
import ai.lathe.model.train.MemoryEstimate;
import java.util.List;

/**
 * The executor memory advice the jobs print before their first executor work (sft, dpo, kto,
 * ref-logps): spark.executor.memory (heap: NF4 codes + working heap) and
 * spark.executor.memoryOverhead (the rest), in ExecutorAdvice's one wording.
 */
final class JobMemory {
  private JobMemory() {}

  /** The advice for a base of shape mc held as quant (none, nf4, nf4-dq) whose engine needs mem. */
  static String advice(LlamaConfig mc, MemoryEstimate mem, String quant) {
    return ExecutorAdvice.of(mem, mc, QuantMode.of(quant)).line(mem);
  }

  /**
   * The advice for a training job whose trainable tensors are params: each task slot's engine
   * holds them as F32 value, gradient and AdamW's two moments (off-heap; train.mode full trains a
   * private copy of the base's tensors), and the executor holds the broadcast state as Java arrays
   * on the heap: the values, and the moments too when they are averaged.
   */
  static String trainingAdvice(LlamaConfig mc, MemoryEstimate mem, String quant, List<Param> params,
      boolean averageOptimizerState) {
    long n = elements(params);
    MemoryEstimate e = mem.withTrainable(n);
    return ExecutorAdvice.of(e, mc, QuantMode.of(quant), 4 * n * (averageOptimizerState ? 3 : 1)).line(e);
  }

  /** Values in the parameters: the trainable count for MemoryEstimate.withTrainable. */
  static long elements(List<Param> params) {
    long n = 0;
    for (Param p : params) {
      n += p.value().length();
    }
    return n;
  }
}
