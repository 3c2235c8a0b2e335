package ai.lathe.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A projection's bias (Qwen2's q/k/v): forward y = x·Wᵀ + b adds b to every row; its backward
 * is db = Σ_rows dy and nothing for dx (x does not meet b). JVM loops on {@link Kernels#JAVA}, an
 * ND4J broadcast add / column sum on the arrays on {@link Kernels#ND4J}. One helper for training
 * (DecoderLayer) and generation (gen.Decoder).
 */
public final class Bias {
  private Bias() {}

  /** forward: y[i, :] += b for i &lt; rows; nothing when b is null. */
  public static void add(Buf y, Buf b, int rows) {
    if (b == null) {
      return;
    }
    int w = b.length();
    if (Kernels.nd4j()) {
      INDArray row = OpKernels.rows(b.arr, 1, w);
      // a 16-bit checkpoint's bias widens to the activations' type (a device-side cast)
      OpKernels.rows(y.arr, rows, w).addiRowVector(row.dataType() == y.arr.dataType() ? row
          : row.castTo(y.arr.dataType()));
      return;
    }
    Par.rows(rows, (lo, hi) -> {
      for (int i = lo; i < hi; i++) {
        int off = i * w;
        for (int j = 0; j < w; j++) {
          y.set(off + j, y.get(off + j) + b.get(j));
        }
      }
    });
  }

  /** backward of y = x·Wᵀ + b: gb += Σ_{i &lt; rows} dy[i, :] (gb has b's width). */
  public static void gradient(INDArray gb, Buf dy, int rows) {
    int w = (int) gb.length();
    if (Kernels.nd4j()) {
      OpKernels.rows(gb, 1, w).addi(OpKernels.rows(dy.arr, rows, w).sum(true, 0));
      return;
    }
    Buf g = Buf.of(gb);
    double[] acc = new double[w];
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < w; j++) {
        acc[j] += dy.get(r * w + j);
      }
    }
    for (int j = 0; j < w; j++) {
      g.add(j, acc[j]);
    }
  }
}
