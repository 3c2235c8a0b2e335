package ai.lathe.model.nn;

/**
 * The head layout change attention needs, with no arithmetic: split moves a projection's rows
 * [b·t, heads·headDim] to the per-head layout [b, heads, t, headDim] that attention multiplies,
 * merge moves them back. Each is the other's inverse and transpose, so the backward of a split is
 * a merge. ({@link Rope} does the same move for q and k while rotating them.)
 */
public final class Heads {
  private Heads() {}

  /** dst[b, h, t, :] = src[b·t, h·headDim : (h+1)·headDim]. */
  public static void split(Buf dst, Buf src, int batch, int seq, int heads, int headDim) {
    long t0 = Timers.start();
    move(src, dst, batch, seq, heads, headDim, true);
    Timers.stop("norms_rope", t0); // profiled with RoPE, the other half of the layout change
  }

  /** dst[b·t, h·headDim : (h+1)·headDim] = src[b, h, t, :] (the inverse of {@link #split}). */
  public static void merge(Buf dst, Buf src, int batch, int seq, int heads, int headDim) {
    long t0 = Timers.start();
    move(dst, src, batch, seq, heads, headDim, false);
    Timers.stop("norms_rope.back", t0);
  }

  /** Copies between rows and the per-head layout, in the direction toHeads says. */
  private static void move(Buf rows, Buf perHead, int batch, int seq, int heads, int headDim, boolean toHeads) {
    if (Kernels.nd4j()) {
      OpKernels.heads(rows.arr, perHead.arr, batch, seq, heads, headDim, toHeads);
      return;
    }
    int width = heads * headDim;
    Par.rows(batch * heads, (lo, hi) -> {
      for (int bh = lo; bh < hi; bh++) {
        int b = bh / heads;
        int h = bh % heads;
        for (int t = 0; t < seq; t++) {
          int r = (b * seq + t) * width + h * headDim;
          int p = (bh * seq + t) * headDim;
          for (int i = 0; i < headDim; i++) {
            if (toHeads) {
              perHead.set(p + i, rows.get(r + i));
            } else {
              rows.set(r + i, perHead.get(p + i));
            }
          }
        }
      }
    });
  }
}
