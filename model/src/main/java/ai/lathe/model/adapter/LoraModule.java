package ai.lathe.model.adapter;

import ai.lathe.model.io.PeftKeys;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.Dropout;
import ai.lathe.model.nn.FrozenLinear;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** LoRA on one projection: y = x·Wᵀ + s·(drop(x)·Aᵀ)·Bᵀ, A [r, in], B [out, r]. */
public final class LoraModule implements AdapterModule {
  private final String path;
  private final int r;
  private final double scale;
  private final double dropout;
  final INDArray a; // [r, in]
  final INDArray b; // [out, r]
  final INDArray ga; // [r, in]
  final INDArray gb; // [out, r]

  public LoraModule(String path, INDArray a, INDArray b, double scale, double dropout) {
    if (a.rank() != 2 || b.rank() != 2 || a.size(0) != b.size(1)) {
      throw new IllegalArgumentException(path + ": lora_A " + java.util.Arrays.toString(a.shape())
          + " and lora_B " + java.util.Arrays.toString(b.shape()) + " do not share a rank");
    }
    this.path = path;
    this.r = (int) a.size(0);
    this.scale = scale;
    this.dropout = dropout;
    this.a = a;
    this.b = b;
    this.ga = Nd4j.zeros(a.dataType(), a.shape());
    this.gb = Nd4j.zeros(b.dataType(), b.shape());
  }

  /** PEFT's default initialisation: A ~ kaiming-uniform(a=√5) = U(±1/√in), B = 0. */
  public static LoraModule init(String path, int in, int out, int r, double scale, double dropout,
      long seed, DataType dtype) {
    SplittableRandom rng = new SplittableRandom(seed);
    double bound = 1.0 / Math.sqrt(in);
    double[] av = new double[r * in];
    for (int i = 0; i < av.length; i++) {
      av[i] = (rng.nextDouble() * 2 - 1) * bound;
    }
    INDArray a = Nd4j.create(av, new long[] {r, in}, DataType.DOUBLE).castTo(dtype);
    INDArray b = Nd4j.zeros(dtype, out, r);
    return new LoraModule(path, a.dup('c'), b, scale, dropout);
  }

  @Override
  public String path() {
    return path;
  }

  @Override
  public int rank() {
    return r;
  }

  public double scale() {
    return scale;
  }

  public INDArray loraA() {
    return a;
  }

  public INDArray loraB() {
    return b;
  }

  /** Activations kept for backward. */
  static final class LoraActs implements Acts {
    final INDArray xa; // [n, r]  drop(x)·Aᵀ
    final INDArray dxa; // [n, r]
    INDArray xUsed; // the input A saw: x, or the dropped copy
    final Buf dropped; // [n, in] drop(x), when dropout > 0
    final Buf keep; // [n, in] mask/(1−p)
    final Buf tmp; // [n, in]

    LoraActs(int rows, int in, int r, boolean withDropout, DataType dt) {
      xa = Nd4j.zeros(dt, rows, r);
      dxa = Nd4j.zeros(dt, rows, r);
      dropped = withDropout ? Buf.zeros(dt, rows, in) : null;
      keep = withDropout ? Buf.zeros(dt, rows, in) : null;
      tmp = withDropout ? Buf.zeros(dt, rows, in) : null;
    }
  }

  @Override
  public Acts newActs(int rows, DataType dtype) {
    return new LoraActs(rows, (int) a.size(1), r, dropout > 0, dtype);
  }

  public double dropout() {
    return dropout;
  }

  @Override
  public void forward(FrozenLinear base, INDArray x, INDArray y, Acts acts, boolean training, long seed) {
    LoraActs s = (LoraActs) acts;
    base.forward(x, y);
    dropInput(x, s, training, seed);
    addUpdate(s, y);
  }

  /** x̃ = drop(x) in training with dropout (mask kept in the acts), else x itself. */
  INDArray dropInput(INDArray x, LoraActs s, boolean training, long seed) {
    s.xUsed = x;
    if (training && dropout > 0) {
      int in = (int) a.size(1);
      Dropout.forward(s.dropped, s.keep, x, (int) (x.length() / in), in, dropout, seed);
      s.xUsed = s.dropped.arr;
    }
    return s.xUsed;
  }

  /** y += s·(x̃·Aᵀ)·Bᵀ, keeping x̃·Aᵀ for backward. */
  void addUpdate(LoraActs s, INDArray y) {
    Nd4j.gemm(s.xUsed, a, s.xa, false, true, 1.0, 0.0);
    Nd4j.gemm(s.xa, b, y, false, true, scale, 1.0);
  }

  /**
   * backward of y = x·Wᵀ + s·xa·Bᵀ, xa = x̃·Aᵀ, x̃ = drop(x):
   * dxa = s·dy·B, dB += s·dyᵀ·xa, dA += dxaᵀ·x̃, dx = dy·W + (dxa·A) ⊙ keep.
   */
  @Override
  public void backward(FrozenLinear base, INDArray dy, INDArray dx, double beta, Acts acts) {
    LoraActs s = (LoraActs) acts;
    base.backwardInput(dy, dx, beta);
    backwardUpdate(s, dy, dx);
  }

  /** The update's gradients for upstream dy, and dx += (dxa·A) ⊙ keep. */
  void backwardUpdate(LoraActs s, INDArray dy, INDArray dx) {
    if (s.keep == null || s.xUsed != s.dropped.arr) {
      backwardUpdateInto(s, dy, dx);
      return;
    }
    s.tmp.arr.assign(0);
    backwardUpdateInto(s, dy, s.tmp.arr);
    int in = (int) a.size(1);
    Dropout.addMasked(dx, s.tmp, s.keep, (int) (dx.length() / in), in);
  }

  /** The update's gradients for upstream dy, and into += dxa·A (no dropout mask). */
  void backwardUpdateInto(LoraActs s, INDArray dy, INDArray into) {
    Nd4j.gemm(dy, b, s.dxa, false, false, scale, 0.0);
    Nd4j.gemm(dy, s.xa, gb, true, false, scale, 1.0);
    Nd4j.gemm(s.dxa, s.xUsed, ga, true, false, 1.0, 1.0);
    Nd4j.gemm(s.dxa, a, into, false, false, 1.0, 1.0);
  }

  @Override
  public List<Param> params() {
    return List.of(
        new Param(PeftKeys.loraA(path), a, ga),
        new Param(PeftKeys.loraB(path), b, gb));
  }
}
