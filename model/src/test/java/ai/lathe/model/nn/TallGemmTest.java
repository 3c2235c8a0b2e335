package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The transposed input-gradient product against a naive triple loop in double. */
class TallGemmTest {
  /** beta·dx + dy·W by loops. */
  static double[][] naive(double[][] dy, double[][] w, double[][] dx, double beta) {
    double[][] out = new double[dy.length][w[0].length];
    for (int i = 0; i < dy.length; i++) {
      for (int j = 0; j < w[0].length; j++) {
        double acc = beta * dx[i][j];
        for (int k = 0; k < w.length; k++) {
          acc += dy[i][k] * w[k][j];
        }
        out[i][j] = acc;
      }
    }
    return out;
  }

  @Test
  void tallAndShortWeightsGiveTheNaiveProduct() {
    assertTrue(TallGemm.tall(40, 5));
    assertFalse(TallGemm.tall(39, 5));
    for (int out : new int[] {7, 40, 97}) {
      for (double beta : new double[] {0.0, 0.5, 1.0}) {
        for (int rows : new int[] {1, 6}) {
          INDArray w = LmHeadLossTest.random(DataType.DOUBLE, out, out, 5);
          INDArray dy = LmHeadLossTest.random(DataType.DOUBLE, out + 1, rows, out);
          INDArray dx = LmHeadLossTest.random(DataType.DOUBLE, out + 2, rows, 5);
          double[][] want = naive(dy.toDoubleMatrix(), w.toDoubleMatrix(), dx.toDoubleMatrix(), beta);
          TallGemm.backwardInput(dy, w, dx, beta);
          for (int i = 0; i < rows; i++) {
            for (int j = 0; j < 5; j++) {
              assertEquals(want[i][j], dx.getDouble(i, j), 1e-10, "out " + out + ", beta " + beta + ", [" + i + "," + j + "]");
            }
          }
        }
      }
    }
  }

  /** Float too, and a view of the rows of a larger dx (the head's chunks write row blocks). */
  @Test
  void floatIntoARowBlock() {
    int out = 300;
    INDArray w = LmHeadLossTest.random(DataType.FLOAT, 1, out, 4);
    INDArray dy = LmHeadLossTest.random(DataType.FLOAT, 2, 3, out);
    INDArray dx = Nd4j.zeros(DataType.FLOAT, 8, 4);
    INDArray block = dx.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(2, 5),
        org.nd4j.linalg.indexing.NDArrayIndex.all());
    TallGemm.backwardInput(dy, w, block, 0.0);
    double[][] want = naive(dy.castTo(DataType.DOUBLE).toDoubleMatrix(), w.castTo(DataType.DOUBLE).toDoubleMatrix(),
        new double[3][4], 0.0);
    for (int i = 0; i < 8; i++) {
      for (int j = 0; j < 4; j++) {
        double expect = i >= 2 && i < 5 ? want[i - 2][j] : 0.0;
        assertEquals(expect, dx.getDouble(i, j), 1e-4 * (1 + Math.abs(expect)), "[" + i + "," + j + "]");
      }
    }
  }
}
