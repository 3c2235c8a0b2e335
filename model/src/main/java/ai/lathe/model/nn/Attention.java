package ai.lathe.model.nn;

import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Causal scaled dot-product attention with grouped-query heads, on the per-head layout
 * [batch, heads, seq, headDim]. Query head h reads key/value head h / (heads/kvHeads), as
 * transformers' repeat_kv does. Because the query heads of one group are adjacent, a group's
 * queries form one [group·seq, headDim] block, so each product is one batched matmul over
 * batch·kvHeads blocks, and the group sums in dK, dV fall out of the matmul itself.
 */
public final class Attention {
  private final int batch;
  private final int seq;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final int group;
  private final double scale;
  private final int window;

  public Attention(int batch, int seq, int heads, int kvHeads, int headDim) {
    this(batch, seq, heads, kvHeads, headDim, 0);
  }

  /** window &gt; 0: sliding-window attention, query i sees key j only when i − j &lt; window (Mistral). */
  public Attention(int batch, int seq, int heads, int kvHeads, int headDim, int window) {
    this.batch = batch;
    this.seq = seq;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.group = heads / kvHeads;
    this.scale = 1.0 / Math.sqrt(headDim);
    this.window = window;
  }

  /** Query-side view [b·kv, group·seq, cols] of a [b·h·seq, cols] buffer. */
  public INDArray queries(INDArray a) {
    return a.reshape('c', (long) batch * kvHeads, (long) group * seq, a.size(1));
  }

  /** Key/value-side view [b·kv, seq, cols] of a [b·kv·seq, cols] buffer. */
  public INDArray keys(INDArray a) {
    return a.reshape('c', (long) batch * kvHeads, seq, a.size(1));
  }

  private static void mm(INDArray x, INDArray y, INDArray z, boolean ta, boolean tb, double alpha) {
    Nd4j.exec(new Mmul(x, y, z, alpha, 0.0, MMulTranspose.builder().transposeA(ta).transposeB(tb).build()));
  }

  /**
   * forward: P = softmax(Q·Kᵀ·scale + causal mask), O = P·V.
   * q, p, o in query-side views; k, v in key-side views; pBuf the buffer behind p.
   */
  public void forward(INDArray o, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v) {
    forward(o, p, pBuf, q, k, v, null);
  }

  /**
   * First key a query row may see: 0, or the start of its packed example; with a sliding window
   * no earlier than i − window + 1.
   */
  private int first(int row, int[] positions) {
    int i = row % seq;
    int f = 0;
    if (positions != null) {
      int b = row / (seq * heads);
      f = i - positions[b * seq + i];
    }
    return window > 0 ? Math.max(f, i - window + 1) : f;
  }

  /** As above; with positions (packed rows) a query attends only within its own example. */
  public void forward(INDArray o, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v, int[] positions) {
    mm(q, k, p, false, true, scale);
    if (Kernels.nd4j()) {
      OpKernels.maskedSoftmax(pBuf.arr, mask(positions), (long) batch * heads * seq, seq);
      mm(p, v, o, false, false, 1.0);
      return;
    }
    Par.rows(batch * heads * seq, (lo, hi) -> {
      for (int row = lo; row < hi; row++) {
        int i = row % seq; // query position
        int off = row * seq;
        int f = first(row, positions);
        RowOps.fill(pBuf, off, f, 0.0);
        double max = RowOps.max(pBuf, off + f, i + 1 - f);
        double sum = RowOps.expShiftSum(pBuf, off + f, i + 1 - f, max);
        RowOps.scale(pBuf, off + f, i + 1 - f, 1.0 / sum);
        RowOps.fill(pBuf, off + i + 1, seq - i - 1, 0.0);
      }
    });
    mm(p, v, o, false, false, 1.0);
  }

  /**
   * backward of S = Q·Kᵀ·scale, P = softmax(S), O = P·V:
   * dP = dO·Vᵀ, dV = Pᵀ·dO, dS = P ⊙ (dP − rowsum(dP ⊙ P))·scale, dQ = dS·K, dK = dSᵀ·Q.
   * Outputs are overwritten; dp (with buffer dpBuf) is scratch shaped like p.
   */
  public void backward(INDArray dq, INDArray dk, INDArray dv, INDArray dp, Buf dpBuf,
      INDArray dOut, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v) {
    backward(dq, dk, dv, dp, dpBuf, dOut, p, pBuf, q, k, v, null);
  }

  /** As above, for the positions the forward pass used. */
  public void backward(INDArray dq, INDArray dk, INDArray dv, INDArray dp, Buf dpBuf,
      INDArray dOut, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v, int[] positions) {
    mm(dOut, v, dp, false, true, 1.0);
    mm(p, dOut, dv, true, false, 1.0);
    if (Kernels.nd4j()) {
      OpKernels.softmaxBackward(pBuf.arr, dpBuf.arr, (long) batch * heads * seq, seq, scale);
      mm(dp, k, dq, false, false, 1.0);
      mm(dp, q, dk, true, false, 1.0);
      return;
    }
    Par.rows(batch * heads * seq, (lo, hi) -> {
      for (int row = lo; row < hi; row++) {
        int i = row % seq;
        int off = row * seq;
        int f = first(row, positions);
        RowOps.fill(dpBuf, off, f, 0.0);
        double dot = RowOps.dot(pBuf, dpBuf, off + f, i + 1 - f);
        RowOps.softmaxBack(pBuf, dpBuf, off + f, i + 1 - f, dot, scale);
        RowOps.fill(dpBuf, off + i + 1, seq - i - 1, 0.0);
      }
    });
    mm(dp, k, dq, false, false, 1.0);
    mm(dp, q, dk, true, false, 1.0);
  }

  private INDArray mask; // [b·h·seq, seq]: 0 where a query sees a key, −∞ elsewhere
  private int[] maskPositions;

  /** The additive mask of {@link #first} and causality, built once per positions array. */
  private synchronized INDArray mask(int[] positions) {
    if (mask == null || maskPositions != positions) {
      int rowsN = batch * heads * seq;
      float[] m = new float[rowsN * seq];
      for (int row = 0; row < rowsN; row++) {
        int i = row % seq;
        int f = first(row, positions);
        for (int j = 0; j < seq; j++) {
          m[row * seq + j] = j < f || j > i ? Float.NEGATIVE_INFINITY : 0f;
        }
      }
      mask = Nd4j.create(m, new long[] {rowsN, seq}, 'c');
      maskPositions = positions;
    }
    return mask;
  }

  public int seq() {
    return seq;
  }

  public int headDim() {
    return headDim;
  }
}
