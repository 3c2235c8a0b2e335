package ai.lathe.model.adapter;

import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.Kernels;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdaLoRA on one projection (PEFT's SVDLinear): y = x·Wᵀ + c·(drop(x)·(A∘E)ᵀ)·Bᵀ with
 * A [r, in] the right singular vectors, E [r, 1] the singular values, B [out, r] the left ones,
 * and c = lora_alpha / (ranknum + 1e-5), ranknum = init_r (PEFT keeps it at the initial rank, also
 * after masking and when loading a sliced adapter). The update is a LoRA whose A is A∘E (each row
 * scaled by its singular value), so the module runs an inner LoraModule over that product and
 * maps its gradient back: d(A∘E) = G ⇒ dA = G∘E, dE_i = Σ_j G_ij·A_ij.
 *
 * <p>It also keeps the rank allocator's per-entry statistics (EMAs of the sensitivity |w·g| and
 * of its uncertainty, for A, E and B) and the mask of kept ranks (masked ranks have E_i = 0).
 */
public final class AdaLoraModule implements AdapterModule {
  private final String path;
  private final int r;
  private final double ranknum;
  private final double alpha;
  final INDArray a; // [r, in]
  final INDArray e; // [r, 1]
  final INDArray b; // [out, r]
  final INDArray ga; // [r, in]
  final INDArray ge; // [r, 1]
  private final INDArray ae; // [r, in]  A∘E, the inner LoRA's A
  private final INDArray tmp; // [r, in]
  private final LoraModule inner; // over (ae, b), scale c; its gb is B's gradient, its ga is d(A∘E)
  /**
   * The allocator's EMAs, index 0 A, 1 E, 2 B: exp_avg_ipt and exp_avg_unc (PEFT's names), F32
   * vectors over each tensor's entries in c order, beside the weights (on the device under CUDA).
   */
  final INDArray[] expAvgIpt = new INDArray[3];
  final INDArray[] expAvgUnc = new INDArray[3];
  /** Kept ranks (PEFT's rank_pattern entry); decided is false until the first allocation. */
  final boolean[] kept;
  boolean decided;

  public AdaLoraModule(String path, INDArray a, INDArray e, INDArray b, double alpha, double ranknum, double dropout) {
    if (a.rank() != 2 || b.rank() != 2 || e.rank() != 2 || a.size(0) != b.size(1) || e.size(0) != a.size(0)
        || e.size(1) != 1) {
      throw new IllegalArgumentException(path + ": lora_A " + Arrays.toString(a.shape()) + ", lora_E "
          + Arrays.toString(e.shape()) + " and lora_B " + Arrays.toString(b.shape()) + " do not share a rank r "
          + "(expected [r, in], [r, 1], [out, r])");
    }
    this.path = path;
    this.r = (int) a.size(0);
    this.alpha = alpha;
    this.ranknum = ranknum;
    this.a = a;
    this.e = e;
    this.b = b;
    this.ga = Nd4j.zeros(a.dataType(), a.shape());
    this.ge = Nd4j.zeros(e.dataType(), e.shape());
    this.ae = Nd4j.zeros(a.dataType(), a.shape());
    this.tmp = Nd4j.zeros(a.dataType(), a.shape());
    this.inner = new LoraModule(path, ae, b, scaleOf(alpha, ranknum), dropout);
    long[] sizes = {a.length(), e.length(), b.length()};
    for (int i = 0; i < 3; i++) {
      expAvgIpt[i] = Nd4j.zeros(DataType.FLOAT, sizes[i]);
      expAvgUnc[i] = Nd4j.zeros(DataType.FLOAT, sizes[i]);
    }
    this.kept = new boolean[r];
    Arrays.fill(kept, true);
  }

  /** PEFT's factor: scaling / (ranknum + 1e-5), scaling = lora_alpha (or r when alpha <= 0). */
  public static double scaleOf(double alpha, double ranknum) {
    return (alpha > 0 ? alpha : ranknum) / (ranknum + 1e-5);
  }

  /** PEFT's reset_lora_parameters: E = 0, A and B ~ N(0, 0.02²), seeded per module. */
  public static AdaLoraModule init(String path, int in, int out, int r, double alpha, double dropout, long seed,
      DataType dtype) {
    SplittableRandom rng = new SplittableRandom(seed);
    double[] av = new double[r * in];
    double[] bv = new double[out * r];
    for (int i = 0; i < av.length; i++) {
      av[i] = 0.02 * rng.nextGaussian();
    }
    for (int i = 0; i < bv.length; i++) {
      bv[i] = 0.02 * rng.nextGaussian();
    }
    INDArray a = Nd4j.create(av, new long[] {r, in}, DataType.DOUBLE).castTo(dtype).dup('c');
    INDArray b = Nd4j.create(bv, new long[] {out, r}, DataType.DOUBLE).castTo(dtype).dup('c');
    return new AdaLoraModule(path, a, Nd4j.zeros(dtype, r, 1), b, alpha, r, dropout);
  }

  @Override
  public String path() {
    return path;
  }

  @Override
  public int rank() {
    return r;
  }

  public double alpha() {
    return alpha;
  }

  public double ranknum() {
    return ranknum;
  }

  /** c = scaling / (ranknum + 1e-5): dW = c·B·(A∘E). */
  public double scale() {
    return scaleOf(alpha, ranknum);
  }

  public INDArray loraA() {
    return a;
  }

  public INDArray loraE() {
    return e;
  }

  public INDArray loraB() {
    return b;
  }

  /** The kept ranks (a copy); all true before the first allocation. */
  public boolean[] kept() {
    return kept.clone();
  }

  public int keptCount() {
    int n = 0;
    for (boolean k : kept) {
      n += k ? 1 : 0;
    }
    return n;
  }

  /** Whether the allocator has decided this module's ranks (PEFT's rank_pattern is set). */
  public boolean decided() {
    return decided;
  }

  /** Sets the kept ranks and zeroes E at the others (PEFT's masked_fill). */
  public void mask(boolean[] keep) {
    if (keep.length != r) {
      throw new IllegalArgumentException(path + ": a mask of " + keep.length + " ranks for rank " + r);
    }
    System.arraycopy(keep, 0, kept, 0, r);
    decided = true;
    applyMask();
  }

  /**
   * Zeroes E at the masked ranks (PEFT's mask_using_rank_pattern): a JVM loop on the java kernels,
   * on the nd4j kernels E ⊙ mask on the device (the mask, decided on the host, travels host to device).
   */
  public void applyMask() {
    if (Kernels.current() == Kernels.ND4J) {
      float[] keep = new float[r];
      for (int i = 0; i < r; i++) {
        keep[i] = kept[i] ? 1f : 0f;
      }
      e.muliColumnVector(Nd4j.create(keep, new long[] {r, 1}, 'c').castTo(e.dataType()));
      return;
    }
    ai.lathe.model.nn.Buf eb = ai.lathe.model.nn.Buf.of(e);
    for (int i = 0; i < r; i++) {
      if (!kept[i]) {
        eb.set(i, 0.0);
      }
    }
  }

  LoraModule inner() {
    return inner;
  }

  @Override
  public Acts newActs(int rows, DataType dtype) {
    return inner.newActs(rows, dtype);
  }

  @Override
  public void forward(FrozenLinear base, INDArray x, INDArray y, Acts acts, boolean training, long seed) {
    ae.assign(a).muliColumnVector(e);
    inner.forward(base, x, y, acts, training, seed);
  }

  /**
   * backward of y = x·Wᵀ + c·x̃·(A∘E)ᵀ·Bᵀ: the inner LoRA gives dB and G = d(A∘E) (into a zeroed
   * scratch) and dx; then dA += G∘E (rows scaled by E), dE += Σ_j G∘A (row sums).
   */
  @Override
  public void backward(FrozenLinear base, INDArray dy, INDArray dx, double beta, Acts acts) {
    inner.ga.assign(0);
    inner.backward(base, dy, dx, beta, acts);
    tmp.assign(inner.ga).muliColumnVector(e);
    ga.addi(tmp);
    tmp.assign(inner.ga).muli(a);
    ge.addi(tmp.sum(true, 1).reshape(r, 1));
  }

  @Override
  public List<Param> params() {
    String p = "base_model.model." + path;
    return List.of(new Param(p + ".lora_A", a, ga), new Param(p + ".lora_E", e, ge),
        new Param(p + ".lora_B", b, inner.gb));
  }

  /** The dense update c·B·(A∘E) [out, in], in double (tests and export checks). */
  public INDArray deltaWeight() {
    INDArray ad = a.castTo(DataType.DOUBLE).mulColumnVector(e.castTo(DataType.DOUBLE));
    return b.castTo(DataType.DOUBLE).mmul(ad).muli(scale());
  }
}
