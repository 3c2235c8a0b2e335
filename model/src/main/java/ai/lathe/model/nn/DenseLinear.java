package ai.lathe.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/** A frozen weight held dense in the engine's dtype. */
public final class DenseLinear implements FrozenLinear {
  private final INDArray w; // [out, in]
  private final String[] kinds; // the bench's product profile

  public DenseLinear(INDArray w) {
    if (w.rank() != 2 || w.isView()) {
      throw new IllegalArgumentException("weight must be a dense 2-d array");
    }
    this.w = w;
    HugePages.advise(w); // its products walk it block by block: 2 MiB pages spare the TLB
    this.kinds = Timers.productKinds(w.size(0), w.size(1), "");
  }

  @Override
  public int in() {
    return (int) w.size(1);
  }

  @Override
  public int out() {
    return (int) w.size(0);
  }

  @Override
  public void forward(INDArray x, INDArray y) {
    long t0 = Timers.now();
    Matmul.gemm(x, w, y, false, true, 1.0, 0.0);
    Timers.product(kinds[0], t0, 2.0 * x.size(0) * w.length());
  }

  @Override
  public void backwardInput(INDArray dy, INDArray dx, double beta) {
    long t0 = Timers.now();
    TallGemm.backwardInput(dy, w, dx, beta); // the LM head takes the transposed product
    Timers.product(kinds[1], t0, 2.0 * dy.size(0) * w.length());
  }

  @Override
  public INDArray dense() {
    return w;
  }

  @Override
  public long bytes() {
    return w.length() * w.dataType().width();
  }
}
