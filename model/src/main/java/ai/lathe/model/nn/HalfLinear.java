package ai.lathe.model.nn;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * A frozen [out, in] weight held in the checkpoint's 16-bit dtype (BF16 or F16), half the bytes of
 * F32. Each call widens tiles of at most {@link #TILE_ELEMS} elements (whole output rows) into a
 * per-thread F32 scratch and runs the dense gemm on them:
 * forward y[:, tile] = x·W[tile]ᵀ, backward dx = Σ_tiles dy[:, tile]·W[tile].
 * A weight that fits one tile (every projection up to 8B scale) is one widening and one gemm.
 */
public final class HalfLinear implements FrozenLinear {
  /** Elements widened at once: 64 MiB of F32 scratch per thread. */
  public static final int TILE_ELEMS = 16 << 20;

  private final Buf.Half w; // [out, in], BF16 or F16
  private final int out;
  private final int in;
  private final int tileRows;
  private final String[] kinds; // the bench's product profile

  public HalfLinear(Buf.Half w) {
    this(w, TILE_ELEMS);
  }

  /** tileElems bounds the scratch (tests use small tiles to exercise the tiled path). */
  public HalfLinear(Buf.Half w, int tileElems) {
    if (w.arr.rank() != 2) {
      throw new IllegalArgumentException("weight must be 2-d, got shape " + java.util.Arrays.toString(w.arr.shape()));
    }
    this.w = w;
    this.out = (int) w.arr.size(0);
    this.in = (int) w.arr.size(1);
    this.tileRows = Math.max(1, Math.min(out, tileElems / in));
    this.kinds = Timers.productKinds(out, in, w.arr.dataType().name().toLowerCase(java.util.Locale.ROOT));
  }

  public Buf.Half weight() {
    return w;
  }

  @Override
  public int in() {
    return in;
  }

  @Override
  public int out() {
    return out;
  }

  /** Per-thread scratch by shape and role (tiles, gathered dy columns, tile outputs). */
  private static final ThreadLocal<Map<String, INDArray>> SCRATCH = ThreadLocal.withInitial(HashMap::new);

  private static INDArray scratch(String role, long rows, long cols) {
    return SCRATCH.get().computeIfAbsent(role + rows + "x" + cols, k -> HugePages.zeros(DataType.FLOAT, rows, cols));
  }

  /**
   * The first n rows of a per-thread [capacity, cols] buffer that grows to the largest n asked for
   * (the head's row count varies from call to call: one buffer, not one per count).
   */
  private static INDArray rowsScratch(String role, long n, long cols) {
    Map<String, INDArray> m = SCRATCH.get();
    String key = role + "*x" + cols;
    INDArray a = m.get(key);
    if (a == null || a.size(0) < n) {
      a = HugePages.zeros(DataType.FLOAT, n, cols);
      m.put(key, a);
    }
    return n == a.size(0) ? a : a.get(NDArrayIndex.interval(0, n), NDArrayIndex.all());
  }

  /** W[r0, r0 + rows) widened into a [rows, in] F32 array. */
  private INDArray widenTile(int r0, int rows) {
    INDArray t = scratch("tile", rows, in); // the short last tile too: off-heap garbage would raise RSS
    if (Kernels.nd4j()) { // widened by a cast on the device
      t.assign(rows == out ? w.arr : w.arr.get(NDArrayIndex.interval(r0, r0 + rows), NDArrayIndex.all()));
      return t;
    }
    FloatBuffer dst = t.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
    Par.rows(rows, (lo, hi) -> w.widen((r0 + lo) * in, dst, lo * in, (hi - lo) * in));
    return t;
  }

  @Override
  public void forward(INDArray x, INDArray y) {
    long t0 = Timers.now();
    forward0(x, y);
    Timers.product(kinds[0], t0, 2.0 * x.size(0) * out * in);
  }

  private void forward0(INDArray x, INDArray y) {
    check(x, in, "x");
    if (tileRows == out) {
      Matmul.gemm(x, widenTile(0, out), y, false, true, 1.0, 0.0);
      return;
    }
    long n = x.size(0);
    INDArray xf = f32(x);
    for (int r0 = 0; r0 < out; r0 += tileRows) {
      int rows = Math.min(tileRows, out - r0);
      INDArray yt = rowsScratch("y" + rows, n, rows);
      Matmul.gemm(xf, widenTile(r0, rows), yt, false, true, 1.0, 0.0);
      y.get(NDArrayIndex.all(), NDArrayIndex.interval(r0, r0 + rows)).assign(yt);
    }
  }

  @Override
  public void backwardInput(INDArray dy, INDArray dx, double beta) {
    long t0 = Timers.now();
    backwardInput0(dy, dx, beta);
    Timers.product(kinds[1], t0, 2.0 * dy.size(0) * out * in);
  }

  private void backwardInput0(INDArray dy, INDArray dx, double beta) {
    check(dy, out, "dy");
    if (tileRows == out) {
      TallGemm.backwardInput(f32(dy), widenTile(0, out), dx, beta);
      return;
    }
    long n = dy.size(0);
    for (int r0 = 0; r0 < out; r0 += tileRows) {
      int rows = Math.min(tileRows, out - r0);
      INDArray dyt = rowsScratch("dy" + rows, n, rows);
      dyt.assign(dy.get(NDArrayIndex.all(), NDArrayIndex.interval(r0, r0 + rows)));
      Matmul.gemm(dyt, widenTile(r0, rows), dx, false, false, 1.0, r0 == 0 ? beta : 1.0);
    }
  }

  private void check(INDArray a, int cols, String what) {
    if (a.rank() != 2 || a.size(1) != cols) {
      throw new IllegalArgumentException(what + " must be [n, " + cols + "], got " + java.util.Arrays.toString(a.shape()));
    }
  }

  /** The engine runs this weight in F32 only (double precision tests hold dense weights). */
  private static INDArray f32(INDArray a) {
    if (a.dataType() != DataType.FLOAT) {
      throw new IllegalArgumentException("a 16-bit weight runs in float, not " + a.dataType());
    }
    return a;
  }

  /** A fresh F32 copy of the whole weight. */
  @Override
  public INDArray dense() {
    INDArray d = Nd4j.create(DataType.FLOAT, out, in);
    FloatBuffer dst = d.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
    w.widen(0, dst, 0, out * in);
    return d;
  }

  @Override
  public long bytes() {
    return 2L * out * in;
  }

  /** ‖W_j‖² per row, widened row by row (no dense copy). */
  @Override
  public double[] rowSquaredNorms() {
    double[] n = new double[out];
    for (int j = 0; j < out; j++) {
      double acc = 0;
      for (int k = 0; k < in; k++) {
        double v = w.get(j * in + k);
        acc += v * v;
      }
      n[j] = acc;
    }
    return n;
  }
}
