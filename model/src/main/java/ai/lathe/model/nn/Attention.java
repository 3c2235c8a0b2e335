package ai.lathe.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Causal scaled dot-product attention with grouped-query heads, on the per-head layout
 * [batch, heads, seq, headDim]. Query head h reads key/value head h / (heads/kvHeads), as
 * transformers' repeat_kv does. The probabilities are kept for backward.
 */
public final class Attention {
  private final int batch;
  private final int seq;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final double scale;

  public Attention(int batch, int seq, int heads, int kvHeads, int headDim) {
    this.batch = batch;
    this.seq = seq;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.scale = 1.0 / Math.sqrt(headDim);
  }

  /** Row-block views [seq, cols] of a [blocks·seq, cols] buffer, one per block. */
  public static INDArray[] blocks(INDArray a, int count, int seq) {
    INDArray[] v = new INDArray[count];
    for (int i = 0; i < count; i++) {
      v[i] = a.get(NDArrayIndex.interval((long) i * seq, (long) (i + 1) * seq), NDArrayIndex.all());
    }
    return v;
  }

  private int kvOf(int bh) {
    int b = bh / heads;
    int h = bh % heads;
    return b * kvHeads + h / (heads / kvHeads);
  }

  /**
   * forward: P = softmax(Q·Kᵀ·scale + causal mask), O = P·V.
   * q, p, o: views per (b, h); k, v: views per (b, kvh); pBuf the buffer behind p.
   */
  public void forward(INDArray[] o, INDArray[] p, Buf pBuf, INDArray[] q, INDArray[] k, INDArray[] v) {
    int bhN = batch * heads;
    for (int bh = 0; bh < bhN; bh++) {
      Nd4j.gemm(q[bh], k[kvOf(bh)], p[bh], false, true, scale, 0.0);
    }
    Par.rows(bhN * seq, (lo, hi) -> {
      for (int row = lo; row < hi; row++) {
        int i = row % seq; // query position
        int off = row * seq;
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= i; j++) {
          max = Math.max(max, pBuf.get(off + j));
        }
        double sum = 0;
        for (int j = 0; j <= i; j++) {
          double e = FastExp.expNonPositive(pBuf.get(off + j) - max);
          pBuf.set(off + j, e);
          sum += e;
        }
        double inv = 1.0 / sum;
        for (int j = 0; j <= i; j++) {
          pBuf.set(off + j, pBuf.get(off + j) * inv);
        }
        for (int j = i + 1; j < seq; j++) {
          pBuf.set(off + j, 0.0);
        }
      }
    });
    for (int bh = 0; bh < bhN; bh++) {
      Nd4j.gemm(p[bh], v[kvOf(bh)], o[bh], false, false, 1.0, 0.0);
    }
  }

  /**
   * backward of S = Q·Kᵀ·scale, P = softmax(S), O = P·V:
   * dP = dO·Vᵀ, dV += Pᵀ·dO, dS = P ⊙ (dP − rowsum(dP ⊙ P))·scale, dQ = dS·K, dK += dSᵀ·Q.
   * dk and dv are overwritten (summed over the query heads of each group).
   */
  public void backward(INDArray[] dq, INDArray[] dk, INDArray[] dv, INDArray[] dp, Buf dpBuf,
      INDArray[] dOut, INDArray[] p, Buf pBuf, INDArray[] q, INDArray[] k, INDArray[] v) {
    int bhN = batch * heads;
    boolean[] seen = new boolean[batch * kvHeads];
    for (int bh = 0; bh < bhN; bh++) {
      int kv = kvOf(bh);
      Nd4j.gemm(dOut[bh], v[kv], dp[bh], false, true, 1.0, 0.0);
      Nd4j.gemm(p[bh], dOut[bh], dv[kv], true, false, 1.0, seen[kv] ? 1.0 : 0.0);
      seen[kv] = true;
    }
    Par.rows(bhN * seq, (lo, hi) -> {
      for (int row = lo; row < hi; row++) {
        int i = row % seq;
        int off = row * seq;
        double dot = 0;
        for (int j = 0; j <= i; j++) {
          dot += pBuf.get(off + j) * dpBuf.get(off + j);
        }
        for (int j = 0; j <= i; j++) {
          dpBuf.set(off + j, pBuf.get(off + j) * (dpBuf.get(off + j) - dot) * scale);
        }
        for (int j = i + 1; j < seq; j++) {
          dpBuf.set(off + j, 0.0);
        }
      }
    });
    java.util.Arrays.fill(seen, false);
    for (int bh = 0; bh < bhN; bh++) {
      int kv = kvOf(bh);
      Nd4j.gemm(dp[bh], k[kv], dq[bh], false, false, 1.0, 0.0);
      Nd4j.gemm(dp[bh], q[bh], dk[kv], true, false, 1.0, seen[kv] ? 1.0 : 0.0);
      seen[kv] = true;
    }
  }

  public int seq() {
    return seq;
  }

  public int headDim() {
    return headDim;
  }
}
