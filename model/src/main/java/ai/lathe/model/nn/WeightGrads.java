package ai.lathe.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The gradients of full-parameter training (train.mode full) that are not a gemm: an RMSNorm
 * weight's and the embedding table's (a projection's bias is {@link Bias#gradient}). JVM loops
 * (accumulated in double) on {@link Kernels#JAVA}; ND4J ops on the arrays on {@link Kernels#ND4J}
 * (the token ids travel host to device, nothing comes back).
 */
public final class WeightGrads {
  private WeightGrads() {}

  /** forward: y_i = w_i·x_i·rstd (rows of width d)  =>  gw_i += Σ_rows dy_i·x_i·rstd. */
  public static void norm(INDArray gw, Buf dy, Buf x, Buf rstd, int rows, int d) {
    if (Kernels.nd4j()) {
      INDArray xr = OpKernels.rows(x.arr, rows, d).mulColumnVector(OpKernels.rows(rstd.arr, rows, 1));
      OpKernels.rows(gw, 1, d).addi(xr.muli(OpKernels.rows(dy.arr, rows, d)).sum(true, 0));
      return;
    }
    Buf g = Buf.of(gw);
    double[] acc = new double[d];
    for (int r = 0; r < rows; r++) {
      double rs = rstd.get(r);
      int o = r * d;
      for (int i = 0; i < d; i++) {
        acc[i] += dy.get(o + i) * x.get(o + i) * rs;
      }
    }
    for (int i = 0; i < d; i++) {
      g.add(i, acc[i]);
    }
  }

  /**
   * forward: x0[i] = E[tok[i]]  =>  gE[tok[i]] += dx0[i] (a scatter-add: repeated tokens sum),
   * rows of width d.
   */
  public static void embedding(INDArray gE, int[] tokens, INDArray dx0, int d) {
    int n = tokens.length;
    if (n == 0) {
      return;
    }
    if (Kernels.nd4j()) {
      INDArray table = OpKernels.rows(gE, gE.length() / d, d);
      Nd4j.exec(org.nd4j.linalg.api.ops.DynamicCustomOp.builder("scatter_add")
          .addInputs(table, Nd4j.createFromArray(tokens), OpKernels.rows(dx0, n, d)).addOutputs(table).build());
      return;
    }
    Buf g = Buf.of(gE);
    Buf dx = Buf.of(dx0);
    for (int i = 0; i < n; i++) {
      int src = i * d;
      int dst = tokens[i] * d;
      for (int j = 0; j < d; j++) {
        g.add(dst + j, dx.get(src + j));
      }
    }
  }
}
