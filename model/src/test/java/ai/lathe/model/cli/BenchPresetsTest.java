package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.nn.HalfLinear;
import ai.lathe.model.nn.Nf4Linear;
import ai.lathe.model.nn.QuantMode;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** bench --preset: the published shapes, and weights built directly in BF16 or NF4 that run. */
class BenchPresetsTest {

  /** Parameter counts as Hugging Face reports them for the three models. */
  @Test
  void presetsHaveThePublishedParameterCounts() {
    assertEquals(1_235_814_400L, BenchPresets.config("llama-3.2-1b").parameterCount());
    assertEquals(494_032_768L, BenchPresets.config("qwen2.5-0.5b").parameterCount());
    assertEquals(8_030_261_248L, BenchPresets.config("llama-3-8b").parameterCount());
    assertThrows(Args.UsageException.class, () -> BenchPresets.config("llama-9"));
  }

  @Test
  void builtWeightsRunInBf16AndNf4() {
    LlamaConfig c = LlamaConfig.family("qwen2", 301, 64, 2, 4, 2, 96, 0, 1000000.0, true, 64, 0);
    Batch b = Batch.of(List.of(new int[] {1, 5, 7, 9, 200, 3}), new int[] {2}, 6, 0);
    double[] bf = null;
    for (QuantMode q : new QuantMode[] {QuantMode.NONE, QuantMode.NF4}) {
      LlamaWeights w = BenchPresets.weights(c, q);
      assertTrue(q == QuantMode.NONE ? w.layers[1].down() instanceof HalfLinear : w.layers[1].down() instanceof Nf4Linear);
      assertTrue(w.lmHead instanceof HalfLinear && w.layers[0].qBias() != null);
      double[] nll = new LlamaModel(w, null, DataType.FLOAT).forward(b, false, 0);
      assertEquals(4, nll.length);
      for (double x : nll) {
        assertTrue(Double.isFinite(x) && x > 0);
      }
      bf = nll;
    }
    assertThrows(Args.UsageException.class, () -> BenchPresets.weights(c, QuantMode.NF4_DQ));
  }
}
