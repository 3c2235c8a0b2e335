package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The bias add and the full-mode gradient kernels ({@link Bias}, {@link WeightGrads}): the ND4J-op
 * path equals the JVM loops (float and double, buffers longer than the rows used) without a host
 * element access, and the scatter-add sums repeated tokens as the formula says.
 */
class WeightKernelsTest {
  @AfterEach
  void reset() {
    Kernels.use(null);
    Buf.counting = false;
  }

  @Test
  void biasAddAndItsGradient() {
    for (DataType dt : List.of(DataType.FLOAT, DataType.DOUBLE)) {
      int rows = 5;
      int w = 12;
      // y [rows·w + tail], b [w]: forward y[i,:] += b; backward gb += Σ_rows dy
      KernelSeamTest.check(dt, 11, new int[] {rows * w + 7, w}, b -> Bias.add(b[0], b[1], rows));
      KernelSeamTest.check(dt, 12, new int[] {w, rows * w + 7}, b -> Bias.gradient(b[0].arr, b[1], rows));
    }
  }

  @Test
  void normWeightGradient() {
    for (DataType dt : List.of(DataType.FLOAT, DataType.DOUBLE)) {
      int rows = 6;
      int d = 16;
      // gw [d], dy [rows·d], x [rows·d], rstd [rows]
      KernelSeamTest.check(dt, 13, new int[] {d, rows * d + 3, rows * d + 3, rows + 2},
          b -> WeightGrads.norm(b[0].arr, b[1], b[2], b[3], rows, d));
    }
  }

  @Test
  void embeddingScatterAddSumsRepeatedTokens() {
    int[] tokens = {3, 1, 3, 0, 3};
    for (DataType dt : List.of(DataType.FLOAT, DataType.DOUBLE)) {
      KernelSeamTest.check(dt, 14, new int[] {5 * 4, tokens.length * 4},
          b -> WeightGrads.embedding(b[0].arr, tokens, b[1].arr, 4));
    }
    // by hand: gE[3] += dx[0] + dx[2] + dx[4], gE[1] += dx[1], gE[0] += dx[3], gE[2] and gE[4] unchanged
    for (Kernels k : Kernels.values()) {
      Kernels.use(k);
      var g = Nd4j.zeros(DataType.FLOAT, 5, 2);
      var dx = Nd4j.createFromArray(new float[][] {{1, 2}, {10, 20}, {100, 200}, {5, 6}, {1000, 2000}});
      WeightGrads.embedding(g, tokens, dx, 2);
      assertArrayEquals(new float[] {5, 6, 10, 20, 0, 0, 1101, 2202, 0, 0}, g.reshape(10).toFloatVector(), 0f,
          k.name());
    }
  }
}
