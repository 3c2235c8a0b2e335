package ai.lathe.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A frozen projection y = x·Wᵀ with W stored [out, in] as in Hugging Face checkpoints. Training
 * never computes its weight gradient: backward only carries the gradient to the input.
 * Implementations may hold W dense or quantised (dequantised on the fly).
 */
public interface FrozenLinear {
  int in();

  int out();

  /** forward: y = x·Wᵀ, x [n, in], y [n, out], y overwritten. */
  void forward(INDArray x, INDArray y);

  /** backward: dx = dy·W + beta·dx, dy [n, out], dx [n, in]. */
  void backwardInput(INDArray dy, INDArray dx, double beta);

  /** The weight as a dense [out, in] array (dequantised if needed); may be shared, do not modify. */
  INDArray dense();

  /** Bytes this weight occupies in memory. */
  long bytes();

  /** ‖W_j‖² per output row j (DoRA's magnitude init and norms), in double. */
  default double[] rowSquaredNorms() {
    Buf w = Buf.of(dense());
    int in = in();
    double[] n = new double[out()];
    for (int j = 0; j < n.length; j++) {
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
