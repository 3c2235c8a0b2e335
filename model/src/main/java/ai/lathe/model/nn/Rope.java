package ai.lathe.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Rotary position embedding in transformers' rotate-half layout: for i < half,
 * out[i] = x[i]·cos − x[i+half]·sin, out[i+half] = x[i+half]·cos + x[i]·sin, with angle
 * pos·θ^(−2i/headDim) (each frequency optionally rescaled as Llama 3 does), applied to q and k
 * on their way from the row layout [b·t, heads·headDim] to the per-head layout [b, heads, t,
 * headDim] that attention multiplies (one pass; {@link Heads} moves v and the output unrotated).
 * Hugging Face checkpoints store q_proj/k_proj rows already in this rotate-half order, so no row
 * permutation happens anywhere.
 */
public final class Rope {
  private final int headDim;
  private final int half;
  private final double[] cos; // [maxPos, half]
  private final double[] sin;
  private final int maxPos;

  public Rope(int headDim, double theta, int maxPos) {
    this(headDim, theta, maxPos, null);
  }

  /** With Llama 3's frequency scaling (null: none). */
  public Rope(int headDim, double theta, int maxPos, ai.lathe.model.RopeScaling scaling) {
    this.headDim = headDim;
    this.half = headDim / 2;
    this.maxPos = maxPos;
    this.cos = new double[maxPos * half];
    this.sin = new double[maxPos * half];
    for (int i = 0; i < half; i++) {
      // transformers computes inv_freq in fp32: 1 / theta^(arange(0, d, 2)/d)
      float base = (float) (1.0 / Math.pow(theta, (double) (2 * i) / headDim));
      float invFreq = scaling == null ? base : scaling.scale(base);
      for (int p = 0; p < maxPos; p++) {
        float ang = (float) p * invFreq;
        cos[p * half + i] = Math.cos(ang);
        sin[p * half + i] = Math.sin(ang);
      }
    }
  }

  private INDArray[] tables; // cos, sin as [maxPos, half] arrays of the last dtype asked for

  /** The ND4J-op path: the angle tables on the device once, gathered at the tokens' positions. */
  private void ops(INDArray rows, INDArray heads4, int batch, int seq, int heads, int[] positions, boolean toHeads) {
    INDArray[] t = tables;
    if (t == null || t[0].dataType() != rows.dataType()) {
      t = new INDArray[] {Nd4j.create(cos, new long[] {maxPos, half}, 'c').castTo(rows.dataType()),
          Nd4j.create(sin, new long[] {maxPos, half}, 'c').castTo(rows.dataType())};
      tables = t;
    }
    INDArray c = OpKernels.atPositions(t[0], batch, seq, positions);
    INDArray s = OpKernels.atPositions(t[1], batch, seq, positions);
    OpKernels.rope(rows, heads4, batch, seq, heads, headDim, c, s, toHeads);
  }

  public int maxPos() {
    return maxPos;
  }

  /**
   * forward: dst[b,h,t,:] = rope(src[b·t, h·headDim : (h+1)·headDim], pos) with pos the token's
   * position (positions [batch·seq], restarting per packed example; null: t).
   */
  public void toHeads(Buf dst, Buf src, int batch, int seq, int heads, int[] positions) {
    long t0 = Timers.start();
    toHeads0(dst, src, batch, seq, heads, positions);
    Timers.stop("norms_rope", t0);
  }

  private void toHeads0(Buf dst, Buf src, int batch, int seq, int heads, int[] positions) {
    if (Kernels.nd4j()) {
      ops(src.arr, dst.arr, batch, seq, heads, positions, true);
      return;
    }
    int width = heads * headDim;
    Par.rows(batch * heads, (lo, hi) -> {
      for (int bh = lo; bh < hi; bh++) {
        int b = bh / heads;
        int h = bh % heads;
        for (int t = 0; t < seq; t++) {
          int s = (b * seq + t) * width + h * headDim;
          int d = (bh * seq + t) * headDim;
          int c = (positions == null ? t : positions[b * seq + t]) * half;
          for (int i = 0; i < half; i++) {
            double x0 = src.get(s + i);
            double x1 = src.get(s + i + half);
            double co = cos[c + i];
            double si = sin[c + i];
            dst.set(d + i, x0 * co - x1 * si);
            dst.set(d + i + half, x1 * co + x0 * si);
          }
        }
      }
    });
  }

  /**
   * The transpose of {@link #toHeads}: gradient from the per-head layout back to rows.
   * backward of out[i] = x[i]cos − x[i+h]sin, out[i+h] = x[i+h]cos + x[i]sin
   * => dx[i] = dout[i]cos + dout[i+h]sin, dx[i+h] = dout[i+h]cos − dout[i]sin.
   */
  public void fromHeads(Buf dst, Buf src, int batch, int seq, int heads, int[] positions) {
    long t0 = Timers.start();
    fromHeads0(dst, src, batch, seq, heads, positions);
    Timers.stop("norms_rope.back", t0);
  }

  private void fromHeads0(Buf dst, Buf src, int batch, int seq, int heads, int[] positions) {
    if (Kernels.nd4j()) {
      ops(dst.arr, src.arr, batch, seq, heads, positions, false);
      return;
    }
    int width = heads * headDim;
    Par.rows(batch * heads, (lo, hi) -> {
      for (int bh = lo; bh < hi; bh++) {
        int b = bh / heads;
        int h = bh % heads;
        for (int t = 0; t < seq; t++) {
          int d = (b * seq + t) * width + h * headDim;
          int s = (bh * seq + t) * headDim;
          int c = (positions == null ? t : positions[b * seq + t]) * half;
          for (int i = 0; i < half; i++) {
            double g0 = src.get(s + i);
            double g1 = src.get(s + i + half);
            double co = cos[c + i];
            double si = sin[c + i];
            dst.set(d + i, g0 * co + g1 * si);
            dst.set(d + i + half, g1 * co - g0 * si);
          }
        }
      }
    });
  }
}
