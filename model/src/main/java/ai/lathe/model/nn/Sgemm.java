package ai.lathe.model.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Measures this machine's single-precision matrix-multiply rate through the same Nd4j.gemm path. */
public final class Sgemm {
  private Sgemm() {}

  /** Best GFLOP/s over a few runs of an m×k by k×n product. */
  public static double peakGflops(int m, int n, int k, double seconds) {
    INDArray a = Nd4j.rand(DataType.FLOAT, m, k);
    INDArray b = Nd4j.rand(DataType.FLOAT, k, n);
    INDArray c = Nd4j.zeros(DataType.FLOAT, m, n);
    for (int i = 0; i < 3; i++) {
      Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
    }
    double best = 0;
    long end = System.nanoTime() + (long) (seconds * 1e9);
    do {
      long t0 = System.nanoTime();
      Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
      double s = (System.nanoTime() - t0) / 1e9;
      best = Math.max(best, 2.0 * m * n * k / s / 1e9);
    } while (System.nanoTime() < end);
    return best;
  }
}
