package ai.lathe.model.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Measures this machine's single-precision matrix-multiply rate: the best of ND4J's sgemm and, where
 * {@link Matmul} runs products on it, oneDNN's matmul primitive, so that the bench's utilisation is
 * taken against the faster of the two. The operands go on huge pages as the weights do
 * ({@link HugePages}): measured, that raised the 1024³ rate from ~362 to ~389 GFLOP/s. (With {@code -Dlathe.gemm=nd4j} oneDNN is not even loaded.)
 */
public final class Sgemm {
  private Sgemm() {}

  /** The rates measured, GFLOP/s: ND4J's sgemm, oneDNN's matmul (0 where not used), and their best. */
  public record Peak(double nd4j, double oneDnn) {
    public double best() {
      return Math.max(nd4j, oneDnn);
    }
  }

  /** Best GFLOP/s over a few runs of an m×k by k×n product, on each library for the given seconds. */
  public static Peak measure(int m, int n, int k, double seconds) {
    INDArray a = Nd4j.rand(DataType.FLOAT, m, k);
    INDArray b = Nd4j.rand(DataType.FLOAT, k, n);
    INDArray c = Nd4j.zeros(DataType.FLOAT, m, n);
    for (INDArray x : new INDArray[] {a, b, c}) {
      HugePages.advise(x); // on the pages the model's weights get, so the reference is not handicapped
    }
    double nd = best(() -> Nd4j.gemm(a, b, c, false, false, 1.0, 0.0), m, n, k, seconds);
    double dn = 0;
    if (Matmul.usesOneDnn() && k <= Matmul.MAX_INNER) {
      dn = best(() -> {
        if (!OneDnn.gemm(false, m, n, k, 1f, Matmul.ptr(a), k, Matmul.ptr(b), n, 0f, Matmul.ptr(c), n)) {
          throw new IllegalStateException("oneDNN refused a " + m + "x" + n + "x" + k + " product");
        }
      }, m, n, k, seconds);
    }
    return new Peak(nd, dn);
  }

  private static double best(Runnable gemm, int m, int n, int k, double seconds) {
    for (int i = 0; i < 3; i++) {
      gemm.run();
    }
    double best = 0;
    long end = System.nanoTime() + (long) (seconds * 1e9);
    do {
      long t0 = System.nanoTime();
      gemm.run();
      double s = (System.nanoTime() - t0) / 1e9;
      best = Math.max(best, 2.0 * m * n * k / s / 1e9);
    } while (System.nanoTime() < end);
    return best;
  }
}
