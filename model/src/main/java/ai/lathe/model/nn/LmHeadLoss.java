package ai.lathe.model.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The LM head, log-softmax and negative log-likelihood as one forward/backward pair that never
 * holds more than chunkRows rows of logits (as Liger's fused linear cross-entropy): forward keeps
 * only each row's log-sum-exp, backward recomputes each chunk's logits.
 *
 * <pre>
 * forward:  z = x·Wᵀ,  lse = log Σ_v exp(z_v),  nll = lse − z[t]
 * backward: dz = w·(exp(z − lse) − onehot(t)),  dx = dz·W,  (hook) dW += dzᵀ·x
 * </pre>
 * A training forward of a frozen head ({@code prepareBackward}) also computes each row's unweighted
 * input gradient g = (exp(z − lse) − onehot(t))·W while the chunk's logits are at hand, so backward
 * is dx_r = w_r·g_r with no gemm: two head products per step instead of three (forward, recompute,
 * input gradient), for [m, dim] more memory.
 * On {@link Kernels#ND4J} the row work is ND4J ops ({@link OpHeadLoss}): only each row's NLL comes
 * back to the host.
 */
public final class LmHeadLoss {
  /** Receives each chunk's logit gradient and input rows: a trainable head adds dzᵀ·x to its gradient. */
  @FunctionalInterface
  public interface HeadGradient {
    void accumulate(INDArray dz, INDArray x); // dz [rows, vocab], x [rows, dim]
  }

  /**
   * Rows of logits held at once by default: about 64M elements (256 MiB in F32) whatever the
   * vocabulary, so a 512-token row of a 128k vocabulary is one chunk: one head product with M = 512
   * ran ~20% faster than two with M = 256 (quiet machine, 1B shape).
   */
  public static int defaultChunkRows(int vocab) {
    return Math.max(1, (64 << 20) / vocab);
  }

  private final int vocab;
  private final int dim;
  private final int chunkRows;
  private final Buf z; // [chunkRows, vocab] one chunk's logits
  private double[] lse = new double[0]; // [m] per-row log-sum-exp of the last forward
  private double[] shift = new double[0]; // [m] per-row max of the last forward's logits
  /** True while z still holds exp(z − max) of the last forward's rows (all of them fit one chunk). */
  private boolean held;
  private int lastRows; // m of the last forward
  private INDArray shiftDev; // [m, 1] shift on the ND4J-op path (stays on the device)
  private INDArray lseDev; // [m, 1] lse on the ND4J-op path
  private INDArray g; // [≥m, dim] unweighted input gradient per row, when forward prepared backward
  private boolean prepared; // g holds the last forward's rows

  public LmHeadLoss(int vocab, int dim, int chunkRows, DataType dt) {
    this(vocab, dim, chunkRows, 0, dt);
  }

  /** maxRows > 0 allocates the prepared input gradient for that many rows now (else on first use). */
  public LmHeadLoss(int vocab, int dim, int chunkRows, int maxRows, DataType dt) {
    if (vocab <= 0 || dim <= 0 || chunkRows <= 0 || maxRows < 0) {
      throw new IllegalArgumentException("vocab, dim and chunkRows must be positive: " + vocab + ", " + dim + ", "
          + chunkRows);
    }
    this.vocab = vocab;
    this.dim = dim;
    this.chunkRows = chunkRows;
    this.z = Buf.zeros(dt, chunkRows, vocab);
    this.g = maxRows > 0 ? HugePages.zeros(dt, maxRows, dim) : null;
  }

  public int chunkRows() {
    return chunkRows;
  }

  /** Bytes this pair holds: one chunk of logits and the prepared input gradient. */
  public long bytes() {
    return (z.arr.length() + (g == null ? 0 : g.length())) * z.arr.dataType().width();
  }

  /** nll[r] for the first m rows of x [≥m, dim] and their targets t[r] ∈ [0, vocab). */
  public double[] forward(FrozenLinear head, INDArray x, int m, int[] t) {
    return forward(head, x, m, t, false);
  }

  /**
   * As {@link #forward(FrozenLinear, INDArray, int, int[])}; prepareBackward (a training step of a
   * frozen head) also computes each row's unweighted input gradient for {@link #backward}.
   */
  public double[] forward(FrozenLinear head, INDArray x, int m, int[] t, boolean prepareBackward) {
    checkHead(head);
    lastRows = m;
    prepared = false;
    if (Kernels.nd4j()) {
      return forwardOps(head, x, m, t);
    }
    double[] nll = new double[m];
    lse = new double[m];
    shift = new double[m];
    held = false;
    for (int r0 = 0; r0 < m; r0 += chunkRows) {
      int rows = Math.min(chunkRows, m - r0);
      int c0 = r0;
      logits(head, x, r0, rows);
      Par.rows(rows, (lo, hi) -> {
        for (int r = lo; r < hi; r++) {
          int off = r * vocab;
          double zt = z.get(off + t[c0 + r]);
          double max = RowOps.max(z, off, vocab);
          double l = max + Math.log(RowOps.expShiftSum(z, off, vocab, max)); // z := exp(z − max)
          lse[c0 + r] = l;
          shift[c0 + r] = max;
          nll[c0 + r] = l - zt;
          if (!Double.isFinite(nll[c0 + r])) {
            throw new IllegalStateException("non-finite logits in head row " + (c0 + r));
          }
        }
      });
      if (prepareBackward) {
        prepareChunk(head, r0, rows, t);
      }
    }
    held = m <= chunkRows && !prepareBackward;
    prepared = prepareBackward && m > 0;
    return nll;
  }

  /** z holds exp(z − max) of rows [r0, r0 + rows): g = (softmax − onehot(t))·W for them. */
  private void prepareChunk(FrozenLinear head, int r0, int rows, int[] t) {
    Par.rows(rows, (lo, hi) -> {
      for (int r = lo; r < hi; r++) {
        int off = r * vocab;
        RowOps.scale(z, off, vocab, Math.exp(shift[r0 + r] - lse[r0 + r])); // softmax = exp(z − max)·exp(max − lse)
        int tt = off + t[r0 + r];
        z.set(tt, z.get(tt) - 1.0);
      }
    });
    if (g == null || g.size(0) < lastRows) {
      g = HugePages.zeros(z.arr.dataType(), lastRows, dim);
    }
    head.backwardInput(rows(z.arr, 0, rows), rows(g, r0, rows), 0.0); // forward: z = x·Wᵀ  =>  g = dz·W
  }

  /**
   * Backward of Σ_r weight[r]·nll[r] for the last forward's rows: writes dx [≥m, dim] (rows [0, m))
   * and hands each chunk's dz to hook (null for a frozen head).
   */
  public void backward(FrozenLinear head, INDArray x, int m, int[] t, double[] weight, INDArray dx,
      HeadGradient hook) {
    checkHead(head);
    if (m != lastRows || weight.length != m) {
      throw new IllegalArgumentException("backward needs the last forward's " + lastRows + " rows and one weight "
          + "each, got " + m + " rows and " + weight.length + " weights");
    }
    // one chunk: z still holds exp(z − max) from forward, and softmax = exp(z − max)·exp(max − lse),
    // so the logits need not be recomputed; several chunks recompute each chunk's logits
    boolean reuse = held;
    held = false; // dz overwrites z
    if (prepared && hook == null) {
      // forward prepared g_r = (softmax_r − onehot_r)·W, and dx_r = w_r·g_r
      prepared = false;
      INDArray wcol = Nd4j.create(weight, new long[] {m, 1}, dx.dataType());
      rows(dx, 0, m).assign(rows(g, 0, m)).muliColumnVector(wcol);
      return;
    }
    prepared = false;
    if (Kernels.nd4j()) {
      backwardOps(head, x, m, t, weight, dx, hook, reuse);
      return;
    }
    for (int r0 = 0; r0 < m; r0 += chunkRows) {
      int rows = Math.min(chunkRows, m - r0);
      int c0 = r0;
      INDArray zc = reuse ? rows(z.arr, 0, rows) : logits(head, x, r0, rows);
      // dz = w·(softmax(z) − onehot(t)), softmax(z) = exp(z − lse)
      Par.rows(rows, (lo, hi) -> {
        for (int r = lo; r < hi; r++) {
          int off = r * vocab;
          double wr = weight[c0 + r];
          if (reuse) {
            RowOps.scale(z, off, vocab, wr * Math.exp(shift[c0 + r] - lse[c0 + r]));
          } else {
            RowOps.expShiftSum(z, off, vocab, lse[c0 + r]);
            RowOps.scale(z, off, vocab, wr);
          }
          int tt = off + t[c0 + r];
          z.set(tt, z.get(tt) - wr);
        }
      });
      // forward: z = x·Wᵀ  =>  dx = dz·W
      head.backwardInput(zc, rows(dx, r0, rows), 0.0);
      if (hook != null) {
        hook.accumulate(zc, rows(x, r0, rows));
      }
    }
  }

  /** forward as ND4J ops: per-row shift and lse stay on the device; nll is the one copy back. */
  private double[] forwardOps(FrozenLinear head, INDArray x, int m, int[] t) {
    if (m == 0) {
      held = false;
      return new double[0];
    }
    DataType dt = z.arr.dataType();
    shiftDev = Nd4j.zeros(dt, m, 1);
    lseDev = Nd4j.zeros(dt, m, 1);
    INDArray nllDev = Nd4j.zeros(dt, m, 1);
    for (int r0 = 0; r0 < m; r0 += chunkRows) {
      int rows = Math.min(chunkRows, m - r0);
      OpHeadLoss.forward(logits(head, x, r0, rows), OpHeadLoss.targetIndex(t, r0, rows, vocab),
          rows(shiftDev, r0, rows), rows(lseDev, r0, rows), rows(nllDev, r0, rows));
    }
    held = m <= chunkRows;
    double[] nll = HostCopies.read(nllDev); // the loss values: the step's one read back per forward
    for (int r = 0; r < m; r++) {
      if (!Double.isFinite(nll[r])) {
        throw new IllegalStateException("non-finite logits in head row " + r);
      }
    }
    return nll;
  }

  /** backward as ND4J ops: dz = w·(softmax(z) − onehot(t)) on the device, then dx and the hook. */
  private void backwardOps(FrozenLinear head, INDArray x, int m, int[] t, double[] weight, INDArray dx,
      HeadGradient hook, boolean reuse) {
    for (int r0 = 0; r0 < m; r0 += chunkRows) {
      int rows = Math.min(chunkRows, m - r0);
      INDArray zc = reuse ? rows(z.arr, 0, rows) : logits(head, x, r0, rows);
      OpHeadLoss.backward(zc, reuse, OpHeadLoss.targetIndex(t, r0, rows, vocab), rows(shiftDev, r0, rows),
          rows(lseDev, r0, rows), OpHeadLoss.column(weight, r0, rows, zc.dataType()));
      head.backwardInput(zc, rows(dx, r0, rows), 0.0);
      if (hook != null) {
        hook.accumulate(zc, rows(x, r0, rows));
      }
    }
  }

  /** z[0, rows) = x[r0, r0 + rows)·Wᵀ; returns the chunk's view. */
  private INDArray logits(FrozenLinear head, INDArray x, int r0, int rows) {
    INDArray zc = rows(z.arr, 0, rows);
    head.forward(rows(x, r0, rows), zc);
    return zc;
  }

  private void checkHead(FrozenLinear head) {
    if (head.out() != vocab || head.in() != dim) {
      throw new IllegalArgumentException("head is [" + head.out() + ", " + head.in() + "], loss built for ["
          + vocab + ", " + dim + "]");
    }
  }

  private static INDArray rows(INDArray a, int r0, int n) {
    return r0 == 0 && n == a.size(0) ? a : a.get(NDArrayIndex.interval(r0, r0 + n), NDArrayIndex.all());
  }
}
