package ai.lathe.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Row gathers and scatters of [rows, d] tensors: the embedding lookup, the rows that carry a
 * target into the LM head and their gradient back. JVM loops on {@link Kernels#JAVA}; ND4J
 * gather / scatter ops on {@link Kernels#ND4J} (the row indices travel host to device).
 */
public final class RowCopy {
  private RowCopy() {}

  /** dst[i] = src[idx[i]] for i &lt; n, rows of width d (src may be 16-bit: widened). */
  public static void gather(Buf dst, Buf src, int[] idx, int n, int d) {
    if (n == 0) {
      return;
    }
    if (Kernels.nd4j()) {
      INDArray ix = Nd4j.createFromArray(java.util.Arrays.copyOf(idx, n));
      INDArray table = OpKernels.rows(src.arr, src.length() / d, d);
      INDArray got = Nd4j.exec(new org.nd4j.linalg.api.ops.impl.shape.Gather(table, ix, 0))[0];
      OpKernels.rows(dst.arr, n, d).assign(got);
      return;
    }
    Par.rows(n, (lo, hi) -> {
      for (int i = lo; i < hi; i++) {
        int s = idx[i] * d;
        int o = i * d;
        for (int j = 0; j < d; j++) {
          dst.set(o + j, src.get(s + j));
        }
      }
    });
  }

  /** dst[idx[r]] = src[r] for r &lt; m (distinct idx), rows of width d; dst's other rows are kept. */
  public static void scatter(Buf dst, Buf src, int[] idx, int m, int d) {
    if (m == 0) {
      return;
    }
    if (Kernels.nd4j()) {
      INDArray ix = Nd4j.createFromArray(java.util.Arrays.copyOf(idx, m));
      INDArray to = OpKernels.rows(dst.arr, dst.length() / d, d);
      Nd4j.exec(org.nd4j.linalg.api.ops.DynamicCustomOp.builder("scatter_upd")
          .addInputs(to, ix, OpKernels.rows(src.arr, m, d)).addOutputs(to).build());
      return;
    }
    Par.rows(m, (lo, hi) -> {
      for (int r = lo; r < hi; r++) {
        int o = idx[r] * d;
        for (int j = 0; j < d; j++) {
          dst.set(o + j, src.get(r * d + j));
        }
      }
    });
  }
}
