package ai.lathe.model.adapter;

import ai.lathe.model.io.PeftKeys;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.Dropout;
import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.Kernels;
import ai.lathe.model.nn.Par;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * DoRA (Liu et al. 2024, arXiv:2402.09353) on one projection, as PEFT computes it: with
 * V = W + s·B·A and n_j = ‖V_j‖ (per output row, treated as a constant in backward) and c = m/n,
 * y = c ⊙ (x̃·Wᵀ + s·x̃·Aᵀ·Bᵀ) + (x − x̃)·Wᵀ where x̃ = dropout(x) (x̃ = x without dropout, so
 * y = x·(c ⊙ V)ᵀ). The row norms come from ‖W_j‖² (once per weight) + 2s·B_j·(A·W_jᵀ) +
 * s²·B_j·(A·Aᵀ)·B_jᵀ, which needs only W's forward, so an NF4 base works the same way.
 * On the nd4j kernels the norms, c and the magnitude gradient are ND4J ops on the device (nothing
 * read back); the JVM kernels compute them in double on the host.
 */
public final class DoraModule implements AdapterModule {
  private final LoraModule lora;
  final INDArray m; // [out] magnitude
  final INDArray gm; // [out]
  private double[] wsq; // ‖W_j‖², fixed
  private INDArray wsqDevice; // the same on the device (ND4J kernels), made on first use
  /** Read from a file without its base: bindBase must run before the first forward. */
  boolean baseless;
  private INDArray[] normScratch; // A·Wᵀ, A·Aᵀ, B·A·Aᵀ
  /** When set, used instead of the computed norms (finite differences hold them fixed). */
  private double[] fixedNorms;

  public DoraModule(LoraModule lora, INDArray magnitude, double[] weightRowSq) {
    if (magnitude.rank() != 1 || magnitude.length() != lora.b.size(0) || weightRowSq.length != lora.b.size(0)) {
      throw new IllegalArgumentException(lora.path() + ": lora_magnitude_vector has shape "
          + java.util.Arrays.toString(magnitude.shape()) + ", expected [" + lora.b.size(0) + "]");
    }
    this.lora = lora;
    this.m = magnitude;
    this.gm = Nd4j.zeros(magnitude.dataType(), magnitude.shape());
    this.wsq = weightRowSq;
  }

  /** PEFT's initialisation: LoRA's A and B = 0, m = the row norms of W. */
  public static DoraModule init(LoraModule lora, double[] weightRowSq, DataType dtype) {
    double[] n = new double[weightRowSq.length];
    for (int j = 0; j < n.length; j++) {
      n[j] = Math.sqrt(weightRowSq[j]);
    }
    return new DoraModule(lora, Nd4j.create(n, new long[] {n.length}, DataType.DOUBLE).castTo(dtype), weightRowSq);
  }

  void bindBase(double[] weightRowSq) {
    if (weightRowSq.length != wsq.length) {
      throw new IllegalArgumentException(path() + ": base has " + weightRowSq.length + " rows, magnitude " + wsq.length);
    }
    this.wsq = weightRowSq;
    this.wsqDevice = null;
    this.baseless = false;
  }

  /** Holds the row norms at their current values (null releases them): for gradient checks. */
  public void fixNorms(double[] norms) {
    this.fixedNorms = norms == null ? null : norms.clone();
  }

  public LoraModule lora() {
    return lora;
  }

  public INDArray magnitude() {
    return m;
  }

  @Override
  public String path() {
    return lora.path();
  }

  @Override
  public int rank() {
    return lora.rank();
  }

  /** n_j = ‖W_j + s·B_j·A‖ for the current A, B. */
  public double[] rowNorms(FrozenLinear base) {
    if (fixedNorms != null) {
      return fixedNorms;
    }
    INDArray[] t = normTerms(base);
    Buf awb = Buf.of(t[0]);
    Buf bb = Buf.of(lora.b);
    Buf bgb = Buf.of(t[2]);
    int r = lora.rank();
    int out = base.out();
    double s = lora.scale();
    double[] n = new double[out];
    for (int j = 0; j < out; j++) {
      double cross = 0;
      double quad = 0;
      for (int k = 0; k < r; k++) {
        double bjk = bb.get(j * r + k);
        cross += bjk * awb.get(k * out + j);
        quad += bjk * bgb.get(j * r + k);
      }
      n[j] = Math.sqrt(Math.max(0, wsq[j] + 2 * s * cross + s * s * quad));
    }
    return n;
  }

  /**
   * {@link #rowNorms} as ND4J ops, a [out] array on the device in A's type: cross_j = Σ_k
   * B_jk·(A·Wᵀ)_kj, quad_j = Σ_k B_jk·(B·A·Aᵀ)_jk. ‖W_j‖² (and fixed norms) travel host to device.
   */
  INDArray rowNormsOnDevice(FrozenLinear base) {
    DataType dt = lora.a.dataType();
    if (fixedNorms != null) {
      return Nd4j.createFromArray(fixedNorms).castTo(dt);
    }
    INDArray[] t = normTerms(base);
    if (wsqDevice == null) {
      wsqDevice = Nd4j.createFromArray(wsq).castTo(dt);
    }
    double s = lora.scale();
    INDArray cross = lora.b.mul(t[0].transpose()).sum(1);
    INDArray quad = lora.b.mul(t[2]).sum(1);
    INDArray sq = cross.muli(2 * s).addi(quad.muli(s * s)).addi(wsqDevice);
    return Transforms.sqrt(Transforms.max(sq, 0.0, false), false);
  }

  /** A·Wᵀ [r, out], A·Aᵀ [r, r], B·A·Aᵀ [out, r] in reused scratch. */
  private INDArray[] normTerms(FrozenLinear base) {
    if (baseless) {
      throw new IllegalStateException(path() + ": DoRA module not bound to its base weights");
    }
    INDArray a = lora.a;
    INDArray b = lora.b;
    int r = lora.rank();
    int out = base.out();
    DataType dt = a.dataType();
    if (normScratch == null) { // an adapter module runs on one thread: allocate once (allocation is slow)
      normScratch = new INDArray[] {Nd4j.zeros(dt, r, out), Nd4j.zeros(dt, r, r), Nd4j.zeros(dt, out, r)};
    }
    base.forward(a, normScratch[0]); // A·Wᵀ [r, out]
    Nd4j.gemm(a, a, normScratch[1], false, true, 1.0, 0.0);
    Nd4j.gemm(b, normScratch[1], normScratch[2], false, false, 1.0, 0.0);
    return normScratch;
  }

  static final class DoraActs implements Acts {
    final LoraModule.LoraActs lora;
    final INDArray inner; // [n, out] x̃·Wᵀ + s·xa·Bᵀ
    final INDArray dyc; // [n, out]
    final INDArray z; // [n, out] x̃·Wᵀ (dropout only)
    final INDArray tmpIn; // [n, in] (dropout only)
    final double[] c; // m_j / n_j (JVM kernels)
    double[] norms;
    INDArray cDevice; // [1, out] the same on the device (ND4J kernels)
    INDArray normsDevice; // [1, out]
    boolean dropped;

    DoraActs(LoraModule.LoraActs lora, int rows, int in, int out, boolean withDropout, DataType dt) {
      this.lora = lora;
      inner = Nd4j.zeros(dt, rows, out);
      dyc = Nd4j.zeros(dt, rows, out);
      z = withDropout ? Nd4j.zeros(dt, rows, out) : null;
      tmpIn = withDropout ? Nd4j.zeros(dt, rows, in) : null;
      c = new double[out];
    }
  }

  @Override
  public Acts newActs(int rows, DataType dtype) {
    boolean drop = lora.dropout() > 0;
    return new DoraActs((LoraModule.LoraActs) lora.newActs(rows, dtype), rows, (int) lora.a.size(1),
        (int) lora.b.size(0), drop, dtype);
  }

  @Override
  public void forward(FrozenLinear base, INDArray x, INDArray y, Acts acts, boolean training, long seed) {
    DoraActs s = (DoraActs) acts;
    if (Kernels.current() == Kernels.ND4J) {
      int out = s.c.length;
      s.normsDevice = rowNormsOnDevice(base).reshape(1, out);
      s.cDevice = m.reshape(1, out).div(s.normsDevice); // c = m / n
    } else {
      s.norms = rowNorms(base);
      Buf mb = Buf.of(m);
      for (int j = 0; j < s.c.length; j++) {
        s.c[j] = mb.get(j) / s.norms[j];
      }
    }
    // inner = x̃·Wᵀ + s·(x̃·Aᵀ)·Bᵀ: LoRA's forward on x̃ (it applies the dropout itself)
    INDArray xTilde = lora.dropInput(x, s.lora, training, seed);
    s.dropped = xTilde != x;
    base.forward(xTilde, s.inner);
    if (s.dropped) {
      s.z.assign(s.inner);
    }
    lora.addUpdate(s.lora, s.inner);
    scaleColumns(s.inner, s, y);
    if (s.dropped) {
      // + (x − x̃)·Wᵀ
      INDArray full = s.dyc; // scratch until backward
      base.forward(x, full);
      y.addi(full).subi(s.z);
    }
  }

  /** out = v ⊙ c, each column j (output feature) scaled by c_j. */
  private static void scaleColumns(INDArray v, DoraActs s, INDArray out) {
    if (s.cDevice != null && Kernels.current() == Kernels.ND4J) {
      out.assign(v.mulRowVector(s.cDevice));
      return;
    }
    double[] cols = s.c;
    Buf vb = Buf.of(v);
    Buf ob = Buf.of(out);
    int o = cols.length;
    Par.rows(vb.length() / o, (lo, hi) -> {
      for (int i = lo; i < hi; i++) {
        for (int j = 0; j < o; j++) {
          int k = i * o + j;
          ob.set(k, cols[j] * vb.get(k));
        }
      }
    });
  }

  /**
   * backward with c constant: dm_j += Σ_i dy_ij·inner_ij / n_j; LoRA's backward with dy ⊙ c;
   * dx = dy·W + keep ⊙ ((dy ⊙ c − dy)·W + dxa·A) (without dropout: (dy ⊙ c)·W + dxa·A).
   */
  @Override
  public void backward(FrozenLinear base, INDArray dy, INDArray dx, double beta, Acts acts) {
    DoraActs s = (DoraActs) acts;
    int o = s.c.length;
    int rows = (int) (dy.length() / o);
    magnitudeGradient(dy, s, rows);
    scaleColumns(dy, s, s.dyc);
    if (!s.dropped) {
      base.backwardInput(s.dyc, dx, beta);
      lora.backwardUpdate(s.lora, s.dyc, dx);
      return;
    }
    base.backwardInput(dy, dx, beta);
    s.dyc.subi(dy);
    base.backwardInput(s.dyc, s.tmpIn, 0.0);
    s.dyc.addi(dy);
    lora.backwardUpdateInto(s.lora, s.dyc, s.tmpIn);
    Dropout.addMasked(dx, Buf.of(s.tmpIn), s.lora.keep, rows, (int) (dx.length() / rows));
  }

  /** forward: y = c ⊙ inner with c = m/n (n constant)  =>  dm_j += Σ_i dy_ij·inner_ij / n_j. */
  private void magnitudeGradient(INDArray dy, DoraActs s, int rows) {
    int o = s.c.length;
    if (s.normsDevice != null && Kernels.current() == Kernels.ND4J) {
      gm.reshape(1, o).addi(dy.mul(s.inner).sum(true, 0).divi(s.normsDevice));
      return;
    }
    Buf dyb = Buf.of(dy);
    Buf ib = Buf.of(s.inner);
    Buf gmb = Buf.of(gm);
    for (int j = 0; j < o; j++) {
      double acc = 0;
      for (int i = 0; i < rows; i++) {
        acc += dyb.get(i * o + j) * ib.get(i * o + j);
      }
      gmb.set(j, gmb.get(j) + acc / s.norms[j]);
    }
  }

  /** W' = c ⊙ (W + s·B·A), the weight to serve without the adapter. */
  public INDArray mergeInto(FrozenLinear base) {
    INDArray w = base.dense().dup('c');
    Nd4j.gemm(lora.b, lora.a, w, false, false, lora.scale(), 1.0);
    double[] n = rowNorms(base);
    Buf wb = Buf.of(w);
    Buf mb = Buf.of(m);
    int in = base.in();
    for (int j = 0; j < n.length; j++) {
      double c = AdapterDeltas.magnitudeScale(mb.get(j), n[j]);
      for (int k = 0; k < in; k++) {
        wb.set(j * in + k, c * wb.get(j * in + k));
      }
    }
    return w;
  }

  /** W = W' / c − s·B·A with c = m / ‖W + s·B·A‖ from the original weight (PEFT's unmerge). */
  public INDArray unmerge(INDArray merged, double[] norms) {
    INDArray w = merged.dup('c');
    Buf wb = Buf.of(w);
    Buf mb = Buf.of(m);
    int in = (int) merged.size(1);
    for (int j = 0; j < norms.length; j++) {
      double c = AdapterDeltas.magnitudeScale(mb.get(j), norms[j]);
      for (int k = 0; k < in; k++) {
        wb.set(j * in + k, wb.get(j * in + k) / c);
      }
    }
    Nd4j.gemm(lora.b, lora.a, w, false, false, -lora.scale(), 1.0);
    return w;
  }

  @Override
  public List<Param> params() {
    return List.of(lora.params().get(0), lora.params().get(1),
        new Param(PeftKeys.magnitude(path()), m, gm));
  }

}
