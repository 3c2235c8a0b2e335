package ai.lathe.model.nn;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Row-major gemm on sub-blocks of dense buffers, straight into the BLAS ND4J itself links
 * (OpenBLAS), with explicit leading dimensions and offsets. For the many small products of
 * blocked attention: through ND4J's op machinery each call costs milliseconds of overhead here,
 * and a strided output view is copied; here a block is just (offset, leading dimension).
 *
 * <p>c[cOff + i·ldc + j] = alpha·Σ_k op(a)[i, k]·op(b)[k, j] + beta·c[...], for i &lt; m, j &lt; n,
 * where op(a) is a [m, k] block (a [k, m] block read transposed when ta) and op(b) is [k, n].
 */
public final class RawGemm {
  private RawGemm() {}

  /** One operand: a buffer, the element offset of its first element, its row stride. */
  public record Block(DataBuffer buf, long off, int ld) {
    public Block {
      if (off < 0 || ld < 1) {
        throw new IllegalArgumentException("gemm block: offset " + off + ", leading dimension " + ld);
      }
    }

    /**
     * The block at element off (row stride ld) of a dense c-order array or a view of one; off counts
     * from the array's own first element (a view's buffer already starts there: adding its
     * offset() again would read past it).
     */
    public static Block of(INDArray a, long off, int ld) {
      if (a.ordering() != 'c' || a.elementWiseStride() != 1) {
        throw new IllegalArgumentException("gemm needs a dense c-order array");
      }
      return new Block(a.data(), off, ld);
    }
  }

  /**
   * Runs body, whose gemm calls are spread over {@link Par}'s threads by the caller (attention runs
   * its heads in parallel), with BLAS on one thread per call: BLAS's own threads on top of the
   * caller's would oversubscribe the cores. With one Par thread BLAS keeps its setting.
   */
  public static void oneThreadEach(Runnable body) {
    if (Par.threads() == 1) {
      body.run();
      return;
    }
    synchronized (RawGemm.class) { // the BLAS thread count is process-wide
      int prev = openblas_nolapack.blas_get_num_threads();
      openblas_nolapack.blas_set_num_threads(1);
      try {
        body.run();
      } finally {
        openblas_nolapack.blas_set_num_threads(prev);
      }
    }
  }

  public static void gemm(boolean ta, boolean tb, int m, int n, int k, double alpha, Block a, Block b,
      double beta, Block c) {
    if (m == 0 || n == 0) {
      return;
    }
    check("a", a, ta ? k : m, ta ? m : k);
    check("b", b, tb ? n : k, tb ? k : n);
    check("c", c, m, n);
    int tA = ta ? openblas_nolapack.CblasTrans : openblas_nolapack.CblasNoTrans;
    int tB = tb ? openblas_nolapack.CblasTrans : openblas_nolapack.CblasNoTrans;
    int order = openblas_nolapack.CblasRowMajor;
    DataType dt = c.buf().dataType();
    if (a.buf().dataType() != dt || b.buf().dataType() != dt) {
      throw new IllegalArgumentException("gemm operands differ in type: " + a.buf().dataType() + ", "
          + b.buf().dataType() + ", " + dt);
    }
    if (dt == DataType.FLOAT) {
      openblas_nolapack.cblas_sgemm(order, tA, tB, m, n, k, (float) alpha, fp(a), a.ld(), fp(b), b.ld(),
          (float) beta, fp(c), c.ld());
    } else if (dt == DataType.DOUBLE) {
      openblas_nolapack.cblas_dgemm(order, tA, tB, m, n, k, alpha, dp(a), a.ld(), dp(b), b.ld(), beta, dp(c),
          c.ld());
    } else {
      throw new IllegalArgumentException("gemm supports float and double, not " + dt);
    }
  }

  /** A rows x cols block with row stride ld must fit its buffer (BLAS would read past it silently). */
  private static void check(String what, Block x, int rows, int cols) {
    if (cols > x.ld() || rows > 0 && x.off() + (long) (rows - 1) * x.ld() + cols > x.buf().length()) {
      throw new IllegalArgumentException("gemm " + what + ": block " + rows + " x " + cols + " at " + x.off()
          + " (ld " + x.ld() + ") outside a buffer of " + x.buf().length());
    }
  }

  private static FloatPointer fp(Block x) {
    return new FloatPointer(x.buf().addressPointer()).position(x.off());
  }

  private static DoublePointer dp(Block x) {
    return new DoublePointer(x.buf().addressPointer()).position(x.off());
  }
}
