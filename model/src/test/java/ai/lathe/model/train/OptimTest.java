package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.lathe.model.adapter.Param;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class OptimTest {
  @Test
  void adamWMatchesTheTorchFormulaStepByStep() {
    INDArray p = Nd4j.create(new double[] {0.5, -1.0, 2.0}, new long[] {3}, DataType.DOUBLE);
    INDArray g = Nd4j.zeros(DataType.DOUBLE, 3);
    AdamW opt = new AdamW(List.of(new Param("p", p, g)), 0.9, 0.95, 1e-8, 0.1);
    double[] ref = {0.5, -1.0, 2.0};
    double[] m = new double[3];
    double[] v = new double[3];
    double[][] grads = {{0.1, -0.2, 0.3}, {-0.4, 0.5, 0.0}, {1.0, 1.0, -1.0}};
    double lr = 0.01;
    for (int t = 1; t <= grads.length; t++) {
      g.assign(Nd4j.create(grads[t - 1], new long[] {3}, DataType.DOUBLE));
      opt.step(lr);
      for (int i = 0; i < 3; i++) {
        ref[i] *= 1 - lr * 0.1;
        m[i] = 0.9 * m[i] + 0.1 * grads[t - 1][i];
        v[i] = 0.95 * v[i] + 0.05 * grads[t - 1][i] * grads[t - 1][i];
        double mh = m[i] / (1 - Math.pow(0.9, t));
        double vh = v[i] / (1 - Math.pow(0.95, t));
        ref[i] -= lr * mh / (Math.sqrt(vh) + 1e-8);
        assertEquals(ref[i], p.getDouble(i), 1e-12);
      }
    }
  }

  @Test
  void clippingScalesToTheMaxNorm() {
    INDArray g1 = Nd4j.create(new double[] {3, 0}, new long[] {2}, DataType.DOUBLE);
    INDArray g2 = Nd4j.create(new double[] {4}, new long[] {1}, DataType.DOUBLE);
    List<Param> ps = List.of(new Param("a", g1.dup(), g1), new Param("b", g2.dup(), g2));
    assertEquals(5.0, AdamW.clipGradNorm(ps, 1.0), 1e-12);
    assertEquals(1.0, AdamW.gradNorm(ps), 1e-6);
    assertEquals(0.6, g1.getDouble(0), 1e-6);
  }

  @Test
  void warmupThenCosine() {
    LrSchedule s = new LrSchedule(1.0, 4, 14, 0.1);
    assertEquals(0.2, s.at(0), 1e-12);
    assertEquals(0.8, s.at(3), 1e-12);
    assertEquals(1.0, s.at(4), 1e-12);
    assertEquals(0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * 0.5)), s.at(9), 1e-12);
    assertEquals(0.1, s.at(14), 1e-12);
    assertEquals(0.1, s.at(100), 1e-12);
  }
}
