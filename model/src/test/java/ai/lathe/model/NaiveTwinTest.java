package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraModule;
import ai.lathe.model.nn.DenseLinear;
import ai.lathe.model.nn.FrozenLinear;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The fast paths against plain loops: gemm on views, and the adapter path against W + s·B·A merged. */
class NaiveTwinTest {

  static double[][] naiveMatmulT(INDArray x, INDArray w) { // x [n,k] · wᵀ, w [m,k]
    int n = (int) x.size(0);
    int k = (int) x.size(1);
    int m = (int) w.size(0);
    double[][] y = new double[n][m];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < m; j++) {
        double s = 0;
        for (int q = 0; q < k; q++) {
          s += x.getDouble(i, q) * w.getDouble(j, q);
        }
        y[i][j] = s;
      }
    }
    return y;
  }

  @Test
  void gemmOnRowBlockViewsMatchesLoops() {
    INDArray big = Nd4j.rand(DataType.DOUBLE, 12, 5);
    INDArray w = Nd4j.rand(DataType.DOUBLE, 7, 5);
    INDArray[] blocks = new INDArray[3];
    for (int i = 0; i < 3; i++) {
      blocks[i] = big.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(4 * i, 4 * i + 4), org.nd4j.linalg.indexing.NDArrayIndex.all());
    }
    INDArray out = Nd4j.zeros(DataType.DOUBLE, 4, 7);
    for (INDArray b : blocks) {
      Nd4j.gemm(b, w, out, false, true, 1.0, 0.0);
      double[][] ref = naiveMatmulT(b, w);
      for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 7; j++) {
          assertEquals(ref[i][j], out.getDouble(i, j), 1e-12);
        }
      }
    }
  }

  @Test
  void loraForwardEqualsMergedWeight() {
    LlamaConfig c = TinyModels.gqaUntied();
    AdapterSet a = TinyModels.randomAdapters(c, List.of("all-linear"), 3, 5.0, 0.0, 2, DataType.DOUBLE);
    LoraModule m = (LoraModule) a.module(1, "gate_proj");
    INDArray w = Nd4j.rand(DataType.DOUBLE, 24, 16);
    INDArray merged = w.add(m.loraB().mmul(m.loraA()).mul(m.scale()));
    INDArray x = Nd4j.rand(DataType.DOUBLE, 6, 16);
    INDArray y = Nd4j.zeros(DataType.DOUBLE, 6, 24);
    FrozenLinear base = new DenseLinear(w);
    m.forward(base, x, y, m.newActs(6, DataType.DOUBLE), false, 0);
    double[][] ref = naiveMatmulT(x, merged);
    for (int i = 0; i < 6; i++) {
      for (int j = 0; j < 24; j++) {
        assertEquals(ref[i][j], y.getDouble(i, j), 1e-12);
      }
    }
  }

  @Test
  void batchedForwardEqualsOneSequenceAtATime() {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 4, 0.3, 0.1, DataType.DOUBLE);
    AdapterSet a = TinyModels.randomAdapters(c, List.of("q_proj", "up_proj"), 2, 4.0, 0.0, 3, DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, a, DataType.DOUBLE);
    Batch b = TinyModels.randomBatch(c, 3, 10, 8);
    double[] all = m.sequenceLogProbs(b);
    for (int s = 0; s < 3; s++) {
      int[] tok = java.util.Arrays.copyOfRange(b.tokens(), s * 10, s * 10 + 10 - s);
      int start = 1 + s % 3;
      Batch one = Batch.of(List.of(tok), new int[] {start}, 16, 0);
      double[] lp = m.sequenceLogProbs(one);
      assertEquals(all[s], lp[0], 1e-10, "sequence " + s);
    }
  }

  /** Packed rows (positions restarting per example) score each example as if it were alone. */
  @Test
  void packedRowEqualsItsExamplesApart() {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 5, 0.3, 0.1, DataType.DOUBLE);
    AdapterSet a = TinyModels.randomAdapters(c, List.of("q_proj", "k_proj", "down_proj"), 2, 4.0, 0.0, 6, DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, a, DataType.DOUBLE);
    int[] x = {1, 7, 9, 11, 3};
    int[] y = {1, 20, 4, 8, 15, 30, 2};
    boolean[] mx = {false, false, true, true, true};
    boolean[] my = {false, false, false, true, true, true, true};
    double alone = 0;
    for (int[][] e : new int[][][] {{x}, {y}}) {
      boolean[] mask = e[0] == x ? mx : my;
      alone += m.sequenceLogProbs(Batch.ofMasks(List.of(e[0]), List.of(mask), 16, 0))[0];
    }
    int[] ids = new int[x.length + y.length];
    boolean[] mask = new boolean[ids.length];
    int[] pos = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      boolean first = i < x.length;
      ids[i] = first ? x[i] : y[i - x.length];
      mask[i] = first ? mx[i] : my[i - x.length];
      pos[i] = first ? i : i - x.length;
    }
    double packed = m.sequenceLogProbs(Batch.ofMasks(List.of(ids), List.of(mask), List.of(pos), 16, 0))[0];
    assertEquals(alone, packed, 1e-10);
  }
}
