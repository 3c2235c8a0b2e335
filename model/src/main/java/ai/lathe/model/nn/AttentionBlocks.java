package ai.lathe.model.nn;

import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link Attention}'s query blocks with each product one oneDNN batched matmul over every head
 * ({@link OneDnn#matmul}), instead of one small BLAS call per head: a head's products are
 * [128, ≤512]·[≤512, 64]-sized, which per-head BLAS runs at ~90 GFLOP/s here and oneDNN, given all
 * 32 heads at once, at ~250-320 (1B shape, 2 threads, measured alone). The flat per-head buffers
 * are viewed as [b·kv, group, rows, cols] tensors by strides; a key/value head is a batch dim of
 * 1 that oneDNN broadcasts over its group of query heads (transformers' repeat_kv), and a
 * transposed operand is just swapped strides. The row work between the products (softmax and its
 * backward) is Attention's own, over every head's rows in parallel. Same blocks, same skipped key
 * blocks, same outputs as the per-head path up to float rounding order. fp32 on the CPU only;
 * if oneDNN refuses a shape, Attention runs the per-head path from then on.
 */
final class AttentionBlocks {
  private static final Logger LOG = LoggerFactory.getLogger(AttentionBlocks.class);
  private final Attention at;
  private final long bkv; // batch · kv heads: the outer batch dim
  private final long g; // query heads per kv head: the inner batch dim
  private final long t;
  private final long hd;
  private volatile boolean refused;

  AttentionBlocks(Attention at) {
    this.at = at;
    this.bkv = (long) at.batch * at.kvHeads;
    this.g = at.group;
    this.t = at.seq;
    this.hd = at.headDim;
  }

  /** Whether this call may run here: fp32, products on oneDNN, and no shape refused before. */
  boolean usable(INDArray q) {
    return !refused && q.dataType() == DataType.FLOAT && Matmul.usesOneDnn();
  }

  /** One operand: a tensor view of a flat buffer from element off. */
  private record T4(long[] dims, long[] strides, INDArray buf, long off) {}

  /** Rows [r0, r0 + rows) of every query head of a [b·h·seq, cols] buffer (cols = its row stride unless given). */
  private T4 queryRows(INDArray buf, long r0, long c0, long rows, long cols, long ld) {
    return new T4(new long[] {bkv, g, rows, cols}, new long[] {g * t * ld, t * ld, ld, 1}, buf, r0 * ld + c0);
  }

  /** Rows [r0, r0 + rows) of every kv head of a [b·kv·seq, hd] buffer, broadcast over the group. */
  private T4 keyRows(INDArray buf, long r0, long rows) {
    return new T4(new long[] {bkv, 1, rows, hd}, new long[] {t * hd, t * hd, hd, 1}, buf, r0 * hd);
  }

  /** The same rows read transposed: [hd, rows]. */
  private T4 keyRowsT(INDArray buf, long r0, long rows) {
    return new T4(new long[] {bkv, 1, hd, rows}, new long[] {t * hd, t * hd, 1, hd}, buf, r0 * hd);
  }

  /** Columns [c0, c0 + cols) of query rows [r0, r0 + rows) of a [b·h·seq, seq] buffer, read transposed: [cols, rows]. */
  private T4 probsT(INDArray buf, long r0, long c0, long cols, long rows) {
    return new T4(new long[] {bkv, g, cols, rows}, new long[] {g * t * t, t * t, 1, t}, buf, r0 * t + c0);
  }

  private static FloatPointer ptr(T4 x) {
    return new FloatPointer(x.buf().data().addressPointer()).getPointer(x.off());
  }

  /** c = alpha·a·b + beta·c; false (and every later call refused) if oneDNN would not. */
  private boolean mm(T4 a, T4 b, T4 c, double alpha, double beta) {
    if (refused) {
      return false;
    }
    if (!OneDnn.matmul(a.dims(), a.strides(), ptr(a), b.dims(), b.strides(), ptr(b), c.dims(), c.strides(), ptr(c),
        (float) alpha, (float) beta)) {
      refused = true;
      LOG.info("oneDNN refused an attention product {} x {}; attention runs per head", java.util.Arrays.toString(a.dims()),
          java.util.Arrays.toString(b.dims()));
      return false;
    }
    return true;
  }

  /** A row operation on query row `row` of a block (softmax or its backward). */
  @FunctionalInterface
  private interface RowOp {
    void run(int row);
  }

  /** op on every head's rows of block b, in parallel. */
  private void rows(Attention.QueryBlock b, RowOp op) {
    int m = b.rows();
    Par.rows(at.batch * at.heads * m, (lo, hi) -> {
      for (int r = lo; r < hi; r++) {
        op.run((r / m) * at.seq + b.s() + r % m);
      }
    });
  }

  /** As {@link Attention#forward}; false with the outputs to be recomputed if oneDNN refused a product. */
  boolean forward(INDArray o, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v, int[] positions) {
    for (int qb = 0; qb * at.block < at.seq; qb++) {
      Attention.QueryBlock b = at.queryBlock(qb);
      // S[s:e, k0:e] = Q[s:e]·K[k0:e]ᵀ·scale, every head
      if (!mm(queryRows(q, b.s(), 0, b.rows(), hd, hd), keyRowsT(k, b.k0(), b.keys()),
          queryRows(p, b.s(), b.k0(), b.rows(), b.keys(), t), at.scale, 0)) {
        return false;
      }
      rows(b, row -> at.softmaxRow(row, b.k0(), b.e(), pBuf, positions));
      // O[s:e] = P[s:e, k0:e]·V[k0:e]
      if (!mm(queryRows(p, b.s(), b.k0(), b.rows(), b.keys(), t), keyRows(v, b.k0(), b.keys()),
          queryRows(o, b.s(), 0, b.rows(), hd, hd), 1, 0)) {
        return false;
      }
    }
    return true;
  }

  /**
   * As {@link Attention#backward}, into dq and the dK/dV accumulators Attention chose ([b·kv, seq,
   * hd] for group 1, per query head otherwise); false if oneDNN refused a product.
   */
  boolean backward(INDArray dq, INDArray dkAcc, INDArray dvAcc, INDArray dp, Buf dpBuf, INDArray dOut, INDArray p,
      Buf pBuf, INDArray q, INDArray k, INDArray v, int[] positions) {
    for (int qb = 0; qb * at.block < at.seq; qb++) {
      Attention.QueryBlock b = at.queryBlock(qb);
      int prevEnd = qb == 0 ? 0 : at.blockEnd(qb - 1);
      // dP = dO·Vᵀ, dV[k0:e] += Pᵀ·dO
      if (!mm(queryRows(dOut, b.s(), 0, b.rows(), hd, hd), keyRowsT(v, b.k0(), b.keys()),
          queryRows(dp, b.s(), b.k0(), b.rows(), b.keys(), t), 1, 0)
          || !accumulate(p, b, prevEnd, dOut, dvAcc)) {
        return false;
      }
      rows(b, row -> at.softmaxBackRow(row, b.k0(), b.e(), pBuf, dpBuf, positions));
      // dQ[s:e] = dS·K[k0:e], dK[k0:e] += dSᵀ·Q[s:e]
      if (!mm(queryRows(dp, b.s(), b.k0(), b.rows(), b.keys(), t), keyRows(k, b.k0(), b.keys()),
          queryRows(dq, b.s(), 0, b.rows(), hd, hd), 1, 0)
          || !accumulate(dp, b, prevEnd, q, dkAcc)) {
        return false;
      }
    }
    return true;
  }

  /**
   * acc rows [k0, e) of block b get a[s:e, j]ᵀ·x[s:e] per head: added below split (keys an earlier
   * block reached), written from split on (keys first reached by this block).
   */
  private boolean accumulate(INDArray a, Attention.QueryBlock b, int split, INDArray x, INDArray acc) {
    int k0 = b.k0();
    int e = b.e();
    if (split > k0 && !mm(probsT(a, b.s(), k0, split - k0, b.rows()), queryRows(x, b.s(), 0, b.rows(), hd, hd),
        queryRows(acc, k0, 0, split - k0, hd, hd), 1, 1)) {
      return false;
    }
    return e <= split || mm(probsT(a, b.s(), split, e - split, b.rows()), queryRows(x, b.s(), 0, b.rows(), hd, hd),
        queryRows(acc, split, 0, e - split, hd, hd), 1, 0);
  }
}
