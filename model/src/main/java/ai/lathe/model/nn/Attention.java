package ai.lathe.model.nn;

import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Causal scaled dot-product attention with grouped-query heads, on the per-head layout
 * [batch, heads, seq, headDim]. Query head h reads key/value head h / (heads/kvHeads), as
 * transformers' repeat_kv does. Causal: query block [s, e) multiplies only keys below e, so the
 * key blocks above the diagonal are never computed ({@code FullAttention} in the tests is the
 * naive twin that computes all T x T scores and masks them).
 */
public final class Attention {
  final int batch;
  final int seq;
  final int heads;
  final int kvHeads;
  final int headDim;
  final int group;
  final double scale;
  private final int window;
  final int block;
  /** Query positions per block: 128 keeps a block's scores (128 x T floats) in L2 at T = 512. */
  static final int BLOCK = 128;
  /** The same blocks with each product one oneDNN call over all heads (fp32, CPU). */
  private final AttentionBlocks batched;

  public Attention(int batch, int seq, int heads, int kvHeads, int headDim) {
    this(batch, seq, heads, kvHeads, headDim, 0);
  }

  /** window &gt; 0: sliding-window attention, query i sees key j only when i − j &lt; window (Mistral). */
  public Attention(int batch, int seq, int heads, int kvHeads, int headDim, int window) {
    this(batch, seq, heads, kvHeads, headDim, window, BLOCK);
  }

  /** block: query positions per block (tests use small blocks to cross block edges on short rows). */
  Attention(int batch, int seq, int heads, int kvHeads, int headDim, int window, int block) {
    if (block < 1 || heads % kvHeads != 0) {
      throw new IllegalArgumentException("attention: block " + block + " must be >= 1 and heads " + heads
          + " a multiple of kv heads " + kvHeads);
    }
    this.block = block;
    this.batch = batch;
    this.seq = seq;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.group = heads / kvHeads;
    this.scale = 1.0 / Math.sqrt(headDim);
    this.window = window;
    this.batched = new AttentionBlocks(this); // reads the fields above
  }

  /** Query-side view [b·kv, group·seq, cols] of a [b·h·seq, cols] buffer. */
  public INDArray queries(INDArray a) {
    return a.reshape('c', (long) batch * kvHeads, (long) group * seq, a.size(1));
  }

  /** Key/value-side view [b·kv, seq, cols] of a [b·kv·seq, cols] buffer. */
  public INDArray keys(INDArray a) {
    return a.reshape('c', (long) batch * kvHeads, seq, a.size(1));
  }

  /**
   * z = alpha·op(x)·op(y) + beta·z on blocks of the flat buffers: z is [m, n], op(x) [m, kk],
   * op(y) [kk, n]; each block given as (array, first element, row stride).
   */
  private static void mm(boolean ta, boolean tb, int m, int n, int kk, double alpha, RawGemm.Block x,
      RawGemm.Block y, double beta, RawGemm.Block z) {
    RawGemm.gemm(ta, tb, m, n, kk, alpha, x, y, beta, z);
  }

  /** The ND4J-op kernel path (engine.kernels nd4j): one batched matmul over the whole views. */
  private static void batched(INDArray x, INDArray y, INDArray z, boolean ta, boolean tb, double alpha) {
    Nd4j.exec(new Mmul(x, y, z, alpha, 0.0, MMulTranspose.builder().transposeA(ta).transposeB(tb).build()));
  }

  /** Row r of a [rows, cols] buffer as the start of a block with row stride cols. */
  private static RawGemm.Block at(INDArray a, long row, long col) {
    int cols = (int) a.size(a.rank() - 1);
    return RawGemm.Block.of(a, row * cols + col, cols);
  }

  /** Query block qb: queries [s, e) and the keys [k0, e) they may see. */
  record QueryBlock(int s, int e, int k0) {
    int rows() {
      return e - s;
    }

    int keys() {
      return e - k0;
    }
  }

  QueryBlock queryBlock(int qb) {
    int s = qb * block;
    return new QueryBlock(s, blockEnd(qb), keyStart(s));
  }

  /** Query positions [s, e) of block qb; the last block may be shorter. */
  int blockEnd(int qb) {
    return Math.min(seq, (qb + 1) * block);
  }

  /**
   * The first key any query of [s, e) may see: 0 for causal attention, s − window + 1 with a
   * sliding window. Keys outside [keyStart, e) are masked for every query of the block, so their
   * scores are never computed and their probabilities stay zero.
   */
  int keyStart(int s) {
    return window > 0 ? Math.max(0, s - window + 1) : 0;
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

  /**
   * As above; with positions (packed rows) a query attends only within its own example.
   * Blocked by query positions: block [s, e) scores only keys [keyStart(s), e), so the key blocks
   * above the diagonal are skipped (about half of the T x T work at T = 4 blocks and more).
   * Per query head h the products are 2-d gemms on rows of the flat buffers; h reads kv head
   * h / group (the query heads of a group are adjacent, as transformers' repeat_kv orders them).
   */
  public void forward(INDArray o, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v, int[] positions) {
    if (Kernels.nd4j()) {
      batched(q, k, p, false, true, scale);
      OpKernels.maskedSoftmax(pBuf.arr, mask(positions), (long) batch * heads * seq, seq);
      batched(p, v, o, false, false, 1.0);
      return;
    }
    if (batched.usable(q) && batched.forward(o, p, pBuf, q, k, v, positions)) {
      return;
    }
    RawGemm.oneThreadEach(() -> Par.rows(batch * heads, (lo, hi) -> {
      for (int bh = lo; bh < hi; bh++) {
        forwardHead(bh, o, p, pBuf, q, k, v, positions);
      }
    }));
  }

  /** One query head of the forward pass, block by block (heads run in parallel, each on one thread). */
  private void forwardHead(int bh, INDArray o, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v,
      int[] positions) {
    long qr = (long) bh * seq; // first row of this query head
    long kr = (long) (bh / group) * seq; // first row of its kv head
    int rowBase = bh * seq;
    for (int qb = 0; qb * block < seq; qb++) {
      int s = qb * block;
      int e = blockEnd(qb);
      int k0 = keyStart(s);
      // S[s:e, k0:e] = Q[s:e]·K[k0:e]ᵀ·scale
      mm(false, true, e - s, e - k0, headDim, scale, at(q, qr + s, 0), at(k, kr + k0, 0), 0.0, at(p, qr + s, k0));
      for (int i = s; i < e; i++) { // query position i
        softmaxRow(rowBase + i, k0, e, pBuf, positions);
      }
      // O[s:e] = P[s:e, k0:e]·V[k0:e]
      mm(false, false, e - s, headDim, e - k0, 1.0, at(p, qr + s, k0), at(v, kr + k0, 0), 0.0, at(o, qr + s, 0));
    }
  }

  /**
   * Row row (query position row % seq) of the block whose keys are [k0, e): its scores, already in
   * pBuf, become probabilities over the keys it may see; the block's other columns become zero.
   */
  void softmaxRow(int row, int k0, int e, Buf pBuf, int[] positions) {
    int i = row % seq;
    int off = row * seq;
    int f = first(row, positions);
    RowOps.fill(pBuf, off + k0, f - k0, 0.0);
    double max = RowOps.max(pBuf, off + f, i + 1 - f);
    double sum = RowOps.expShiftSum(pBuf, off + f, i + 1 - f, max);
    RowOps.scale(pBuf, off + f, i + 1 - f, 1.0 / sum);
    RowOps.fill(pBuf, off + i + 1, e - i - 1, 0.0);
  }

  /** Row row of the block [k0, e): dP (in dpBuf) becomes dS = P ⊙ (dP − rowsum(dP ⊙ P))·scale. */
  void softmaxBackRow(int row, int k0, int e, Buf pBuf, Buf dpBuf, int[] positions) {
    int i = row % seq;
    int off = row * seq;
    int f = first(row, positions);
    RowOps.fill(dpBuf, off + k0, f - k0, 0.0);
    double dot = RowOps.dot(pBuf, dpBuf, off + f, i + 1 - f);
    RowOps.softmaxBack(pBuf, dpBuf, off + f, i + 1 - f, dot, scale);
    RowOps.fill(dpBuf, off + i + 1, e - i - 1, 0.0);
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

  /**
   * As above, for the positions the forward pass used, over the same blocks: only the
   * [keyStart(s), e) columns of each query block carry probability, so only they are read.
   * dK and dV sum over the query blocks and the group's query heads.
   */
  public void backward(INDArray dq, INDArray dk, INDArray dv, INDArray dp, Buf dpBuf,
      INDArray dOut, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v, int[] positions) {
    backward(dq, dk, dv, dp, dpBuf, dOut, p, pBuf, q, k, v, positions, null, null);
  }

  /**
   * As above, with the per-query-head dK and dV rows [b·h·seq, hd] the Java kernels use when query
   * heads share a kv head (null: held here, allocated on first use).
   */
  public void backward(INDArray dq, INDArray dk, INDArray dv, INDArray dp, Buf dpBuf,
      INDArray dOut, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v, int[] positions,
      INDArray dkHeads, INDArray dvHeads) {
    if (Kernels.nd4j()) {
      batched(dOut, v, dp, false, true, 1.0);
      batched(p, dOut, dv, true, false, 1.0);
      OpKernels.softmaxBackward(pBuf.arr, dpBuf.arr, (long) batch * heads * seq, seq, scale);
      batched(dp, k, dq, false, false, 1.0);
      batched(dp, q, dk, true, false, 1.0);
      return;
    }
    // a query head's dK/dV contributions go to its own rows of a scratch when query heads share a
    // kv head (heads run in parallel); the group's rows are summed into dk, dv afterwards
    INDArray dkAcc = group == 1 ? dk : dkHeads != null ? dkHeads : headScratch(0, dk);
    INDArray dvAcc = group == 1 ? dv : dvHeads != null ? dvHeads : headScratch(1, dv);
    if (!batched.usable(q) || !batched.backward(dq, dkAcc, dvAcc, dp, dpBuf, dOut, p, pBuf, q, k, v, positions)) {
      RawGemm.oneThreadEach(() -> Par.rows(batch * heads, (lo, hi) -> {
        for (int bh = lo; bh < hi; bh++) {
          backwardHead(bh, dq, dkAcc, dvAcc, dp, dpBuf, dOut, p, pBuf, q, k, v, positions);
        }
      }));
    }
    if (group > 1) {
      sumGroups(dkAcc, dk);
      sumGroups(dvAcc, dv);
    }
  }

  /**
   * One query head of the backward pass. dkAcc, dvAcc: [b·kv, seq, hd] (group 1) or the per-query-head
   * scratch [b·h·seq, hd]; this head's rows in them are overwritten, not added to.
   */
  private void backwardHead(int bh, INDArray dq, INDArray dkAcc, INDArray dvAcc, INDArray dp, Buf dpBuf,
      INDArray dOut, INDArray p, Buf pBuf, INDArray q, INDArray k, INDArray v, int[] positions) {
    long qr = (long) bh * seq;
    long kr = (long) (bh / group) * seq;
    long ar = group == 1 ? kr : qr; // this head's rows of the dK/dV accumulators
    int rowBase = bh * seq;
    for (int qb = 0; qb * block < seq; qb++) {
      int s = qb * block;
      int e = blockEnd(qb);
      int k0 = keyStart(s);
      int m = e - s;
      int n = e - k0;
      // keys [prevEnd, e) are first reached by this block (every key is: key j by the block of
      // query j), so their dK/dV rows are written (beta 0); rows [k0, prevEnd) add up
      int prevEnd = qb == 0 ? 0 : blockEnd(qb - 1);
      // dP = dO·Vᵀ, dV[k0:e] += Pᵀ·dO
      mm(false, true, m, n, headDim, 1.0, at(dOut, qr + s, 0), at(v, kr + k0, 0), 0.0, at(dp, qr + s, k0));
      accumulate(p, qr + s, k0, prevEnd, e, dOut, m, dvAcc, ar);
      for (int i = s; i < e; i++) {
        softmaxBackRow(rowBase + i, k0, e, pBuf, dpBuf, positions);
      }
      // dQ[s:e] = dS·K[k0:e], dK[k0:e] += dSᵀ·Q[s:e]
      mm(false, false, m, headDim, n, 1.0, at(dp, qr + s, k0), at(k, kr + k0, 0), 0.0, at(dq, qr + s, 0));
      accumulate(dp, qr + s, k0, prevEnd, e, q, m, dkAcc, ar);
    }
  }

  /**
   * acc[ar + j] for keys j in [k0, e) gets Σ_i a[aRow + i, j]·b[aRow + i] over the block's m query
   * rows: added for j below split, written for j from split on.
   */
  private void accumulate(INDArray a, long aRow, int k0, int split, int e, INDArray b, int m, INDArray acc,
      long ar) {
    if (split > k0) {
      mm(true, false, split - k0, headDim, m, 1.0, at(a, aRow, k0), at(b, aRow, 0), 1.0, at(acc, ar + k0, 0));
    }
    if (e > split) {
      mm(true, false, e - split, headDim, m, 1.0, at(a, aRow, split), at(b, aRow, 0), 0.0, at(acc, ar + split, 0));
    }
  }

  private final INDArray[] scratch = new INDArray[2];

  /** Whether backward needs per-query-head dK/dV rows (query heads share kv heads). */
  public boolean groupsShareKeys() {
    return group > 1;
  }

  /** Per-query-head dK or dV rows [b·h·seq, hd], in like's type, reused between calls. */
  private INDArray headScratch(int which, INDArray like) {
    INDArray a = scratch[which];
    if (a == null || a.dataType() != like.dataType()) {
      a = HugePages.zeros(like.dataType(), (long) batch * heads * seq, headDim);
      scratch[which] = a;
    }
    return a;
  }

  /** to[kv head] = Σ over the group's query heads of from[query head]; to is [b·kv, seq, hd]. */
  private void sumGroups(INDArray from, INDArray to) {
    long span = (long) seq * headDim;
    INDArray f = from.reshape('c', (long) batch * kvHeads, group, span);
    INDArray t = to.reshape('c', (long) batch * kvHeads, span);
    t.assign(f.get(NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all()));
    for (int j = 1; j < group; j++) {
      t.addi(f.get(NDArrayIndex.all(), NDArrayIndex.point(j), NDArrayIndex.all()));
    }
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
