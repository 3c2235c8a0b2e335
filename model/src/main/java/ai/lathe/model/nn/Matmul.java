package ai.lathe.model.nn;

import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The frozen weights' products: {@code Nd4j.gemm}'s contract (c = alpha·op(a)·op(b) + beta·c on
 * 2-d arrays), run on oneDNN's matmul primitive ({@link OneDnn}) where that is faster here, on
 * ND4J's gemm otherwise.
 *
 * <p>oneDNN takes a product when: ND4J's backend is the CPU one (on CUDA the data lives on the
 * GPU), all three arrays are fp32 and row-major with unit column stride (row views of a larger array
 * included), a is not transposed, the product has at least {@link #MIN_ROWS} rows and
 * {@link #MIN_FLOPS} FLOPs, and the inner dimension is at most {@link #MAX_INNER} for a
 * transposed b (the forward x·Wᵀ) or {@link #MAX_INNER_NN} for a plain one (the input gradient dy·W;
 * beyond these ND4J's sgemm is as fast or faster: 323 against 259 GFLOP/s for the LM head's input
 * gradient, K = 128256). {@code -Dlathe.gemm=nd4j} (or {@link #setOneDnn}) sends every product to
 * ND4J, for comparisons; any value but onednn or nd4j is an error at the first product.
 */
public final class Matmul {
  /** The longest inner dimension oneDNN takes for x·Wᵀ (measured: 2048 and 8192 faster on oneDNN, 32768 not). */
  public static final int MAX_INNER = 16384;
  /**
   * The longest for the untransposed dy·W: ND4J's sgemm runs that shape well, and oneDNN was ahead
   * at k = 2048 (in place 298-332 against 279 GFLOP/s) but behind at k = 8192 (the gate/up input
   * gradient: 267-313 against 317 in place, 330 against 352 alone).
   */
  public static final int MAX_INNER_NN = 4096;

  /**
   * The smallest product oneDNN takes, in multiply-adds·2 (FLOPs): below it ND4J's sgemm is as good
   * and a primitive per row count is not worth its memory (~50 KiB each) or making (~0.5 ms).
   * Generation's one-row decoding steps and small models' projections stay on ND4J.
   */
  public static final double MIN_FLOPS = 1 << 28;
  /** The fewest rows oneDNN takes (fewer is a matrix-vector product, bound by reading W). */
  public static final int MIN_ROWS = 16;

  private static volatile int minRows = MIN_ROWS;
  private static volatile double minFlops = MIN_FLOPS;

  private static final String SETTING = System.getProperty("lathe.gemm", "onednn").trim();
  /** A misspelt -Dlathe.gemm stops the first product rather than being read as the default. */
  private static final String BAD_SETTING = SETTING.equalsIgnoreCase("onednn") || SETTING.equalsIgnoreCase("nd4j")
      ? null : "-Dlathe.gemm=" + SETTING + ": expected onednn (the default) or nd4j";
  private static volatile boolean oneDnn = !SETTING.equalsIgnoreCase("nd4j");
  private static final boolean CPU = !Kernels.cudaBackend();

  private Matmul() {}

  /** Whether products may take oneDNN (default true unless -Dlathe.gemm=nd4j). */
  public static void setOneDnn(boolean on) {
    oneDnn = on;
  }

  /** Tests: the smallest product oneDNN takes (the defaults are {@link #MIN_ROWS}, {@link #MIN_FLOPS}). */
  static void setMinimums(int rows, double flops) {
    minRows = rows;
    minFlops = flops;
  }

  private static void checkSetting() {
    if (BAD_SETTING != null) {
      throw new IllegalArgumentException(BAD_SETTING);
    }
  }

  /** Whether products may run on oneDNN: switched on, a CPU backend, and the library loaded. */
  public static boolean usesOneDnn() {
    checkSetting();
    return oneDnn && CPU && OneDnn.loaded();
  }

  /** Which library the products run on, for the bench's report. */
  public static String engine() {
    checkSetting();
    if (!oneDnn) {
      return "nd4j (-Dlathe.gemm=nd4j)";
    }
    if (!CPU || !OneDnn.loaded()) {
      return "nd4j (oneDNN unavailable: " + (CPU ? OneDnn.unavailableReason() : "CUDA backend") + ")";
    }
    return "onednn matmul (>= " + MIN_ROWS + " rows and 2^28 FLOPs; x·Wᵀ with K <= " + MAX_INNER + ", dy·W with K <= "
        + MAX_INNER_NN + "), else nd4j";
  }

  /** c = alpha·op(a)·op(b) + beta·c, as {@code Nd4j.gemm(a, b, c, ta, tb, alpha, beta)}. */
  public static void gemm(INDArray a, INDArray b, INDArray c, boolean ta, boolean tb, double alpha, double beta) {
    checkSetting();
    if (!oneDnn || !CPU || ta || !tryOneDnn(a, b, c, tb, alpha, beta)) {
      Nd4j.gemm(a, b, c, ta, tb, alpha, beta);
    }
  }

  private static boolean tryOneDnn(INDArray a, INDArray b, INDArray c, boolean tb, double alpha, double beta) {
    if (a.rank() != 2 || b.rank() != 2 || c.rank() != 2 || a.dataType() != DataType.FLOAT
        || b.dataType() != DataType.FLOAT || c.dataType() != DataType.FLOAT) {
      return false;
    }
    long m = a.size(0);
    long k = a.size(1);
    long n = tb ? b.size(0) : b.size(1);
    if ((tb ? b.size(1) : b.size(0)) != k || c.size(0) != m || c.size(1) != n) {
      throw new IllegalArgumentException("gemm shapes do not match: " + shape(a) + " x " + shape(b)
          + (tb ? "ᵀ" : "") + " -> " + shape(c));
    }
    long lda = rowStride(a);
    long ldb = rowStride(b);
    long ldc = rowStride(c);
    if (m < minRows || 2.0 * m * n * k < minFlops || k > (tb ? MAX_INNER : MAX_INNER_NN) || lda < 0 || ldb < 0
        || ldc < 0 || m > Integer.MAX_VALUE
        || n > Integer.MAX_VALUE) {
      return false;
    }
    return OneDnn.gemm(tb, (int) m, (int) n, (int) k, (float) alpha, ptr(a), lda, ptr(b), ldb,
        (float) beta, ptr(c), ldc);
  }

  /** The row stride of a row-major 2-d array with unit column stride, or -1 if it is not one. */
  static long rowStride(INDArray x) {
    long rows = x.size(0);
    long cols = x.size(1);
    if (cols > 1 && x.stride(1) != 1) {
      return -1;
    }
    if (rows == 1) {
      return Math.max(cols, 1); // one row: its row stride is never read
    }
    long s = x.stride(0);
    return s >= cols ? s : -1;
  }

  /** The array's first element: a view's buffer already starts at it (its offset() is that buffer's). */
  static FloatPointer ptr(INDArray x) {
    return new FloatPointer(x.data().addressPointer());
  }

  private static String shape(INDArray x) {
    return java.util.Arrays.toString(x.shape());
  }
}
