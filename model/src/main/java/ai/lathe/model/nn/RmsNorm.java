package ai.lathe.model.nn;

/**
 * RMSNorm as transformers' LlamaRMSNorm: y = w ⊙ x · rstd, rstd = 1/sqrt(mean(x²) + eps),
 * computed in at least fp32 (here double accumulators).
 */
public final class RmsNorm {
  private RmsNorm() {}

  /** forward: y[n,d] = w ⊙ x·rstd; keeps rstd[n] for backward. */
  public static void forward(Buf y, Buf rstd, Buf x, Buf w, int n, int d, double eps) {
    long t0 = Timers.start();
    forward0(y, rstd, x, w, n, d, eps);
    Timers.stop("norms_rope", t0);
  }

  private static void forward0(Buf y, Buf rstd, Buf x, Buf w, int n, int d, double eps) {
    if (Kernels.nd4j()) {
      OpKernels.rmsNormForward(y.arr, rstd.arr, x.arr, w.arr, n, d, eps);
      return;
    }
    if (RowOps.VECTOR && y instanceof Buf.F32 yf) {
      var xb = ((Buf.F32) x).bytes();
      var wb = ((Buf.F32) w).bytes();
      Par.rows(n, (lo, hi) -> {
        for (int r = lo; r < hi; r++) {
          double rs = 1.0 / Math.sqrt(VecF32.sumSquares(xb, r * d, d) / d + eps);
          rstd.set(r, rs);
          VecF32.normRow(yf.bytes(), xb, wb, r * d, d, (float) rs);
        }
      });
      return;
    }
    Par.rows(n, (lo, hi) -> {
      for (int r = lo; r < hi; r++) {
        int o = r * d;
        double ss = 0;
        for (int i = 0; i < d; i++) {
          double v = x.get(o + i);
          ss += v * v;
        }
        double rs = 1.0 / Math.sqrt(ss / d + eps);
        rstd.set(r, rs);
        for (int i = 0; i < d; i++) {
          y.set(o + i, w.get(i) * (x.get(o + i) * rs));
        }
      }
    });
  }

  /**
   * backward: y_i = w_i·x_i·r, r = (mean(x²)+eps)^(-1/2)
   * => dx_j = r·w_j·dy_j − (r³/d)·x_j·Σ_i w_i·dy_i·x_i. Adds into dx when accumulate.
   */
  public static void backward(Buf dx, Buf dy, Buf x, Buf w, Buf rstd, int n, int d, boolean accumulate) {
    long t0 = Timers.start();
    backward0(dx, dy, x, w, rstd, n, d, accumulate);
    Timers.stop("norms_rope.back", t0);
  }

  private static void backward0(Buf dx, Buf dy, Buf x, Buf w, Buf rstd, int n, int d, boolean accumulate) {
    if (Kernels.nd4j()) {
      OpKernels.rmsNormBackward(dx.arr, dy.arr, x.arr, w.arr, rstd.arr, n, d, accumulate);
      return;
    }
    if (RowOps.VECTOR && dx instanceof Buf.F32 dxf) {
      var dyb = ((Buf.F32) dy).bytes();
      var xb = ((Buf.F32) x).bytes();
      var wb = ((Buf.F32) w).bytes();
      Par.rows(n, (lo, hi) -> {
        for (int r = lo; r < hi; r++) {
          double rs = rstd.get(r);
          double c = rs * rs * rs * VecF32.dot3(wb, dyb, xb, r * d, d) / d;
          VecF32.normBackRow(dxf.bytes(), dyb, xb, wb, r * d, d, (float) rs, (float) c, accumulate);
        }
      });
      return;
    }
    Par.rows(n, (lo, hi) -> {
      for (int r = lo; r < hi; r++) {
        int o = r * d;
        double rs = rstd.get(r);
        double dot = 0;
        for (int i = 0; i < d; i++) {
          dot += w.get(i) * dy.get(o + i) * x.get(o + i);
        }
        double c = rs * rs * rs * dot / d;
        for (int i = 0; i < d; i++) {
          double g = rs * w.get(i) * dy.get(o + i) - c * x.get(o + i);
          dx.set(o + i, accumulate ? dx.get(o + i) + g : g);
        }
      }
    });
  }
}
