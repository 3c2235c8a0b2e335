package ai.lathe.model.nn;

import java.util.SplittableRandom;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Inverted dropout on [rows, width] inputs: keep = 0 with probability p, else 1/(1 − p), and
 * x̃ = x ⊙ keep. Row r's mask comes from its own SplittableRandom(Seeds.derive(seed, r)), so the mask
 * is a function of (seed, row, column) alone: the same on both kernel paths and whatever number of
 * threads {@link Par#rows} splits the rows over (a generator per range of rows made the mask
 * depend on the thread count, which is JVM-wide state: a run resumed in a fresh JVM then drew other
 * masks than the uninterrupted one). On {@link Kernels#ND4J} the mask is made on the host and
 * copied to the device once (host to device: no read back), and the products are ND4J ops. The
 * row seed is mixed, not seed·γ + r (γ is SplittableRandom's own step, so seeds s and s + 1, as q,
 * k and v had, drew one stream shifted by one element: nearly identical masks on one input).
 */
public final class Dropout {
  private Dropout() {}

  /** forward: keep := mask/(1 − p), dropped := x ⊙ keep (x [rows, width], dense). */
  public static void forward(Buf dropped, Buf keep, INDArray x, int rows, int width, double p, long seed) {
    double keepScale = 1.0 / (1.0 - p);
    if (Kernels.nd4j()) {
      float[] k = new float[rows * width];
      Par.rows(rows, (lo, hi) -> {
        for (int r = lo; r < hi; r++) {
          SplittableRandom rng = rowRandom(seed, r);
          for (int i = r * width; i < (r + 1) * width; i++) {
            k[i] = rng.nextDouble() < p ? 0f : (float) keepScale;
          }
        }
      });
      INDArray kd = OpKernels.rows(keep.arr, rows, width);
      kd.assign(Nd4j.create(k, new long[] {rows, width}, 'c'));
      OpKernels.rows(dropped.arr, rows, width).assign(OpKernels.rows(x, rows, width).mul(kd));
      return;
    }
    Buf xb = Buf.of(x);
    Par.rows(rows, (lo, hi) -> {
      for (int r = lo; r < hi; r++) {
        SplittableRandom rng = rowRandom(seed, r);
        for (int i = r * width; i < (r + 1) * width; i++) {
          double k = rng.nextDouble() < p ? 0.0 : keepScale;
          keep.set(i, k);
          dropped.set(i, xb.get(i) * k);
        }
      }
    });
  }

  /**
   * The generator of row r's mask: a function of the seed and the row only (not of Par's split),
   * through a mixed seed, so nearby seeds and rows draw unrelated streams.
   */
  static SplittableRandom rowRandom(long seed, int row) {
    return new SplittableRandom(Seeds.derive(seed, row));
  }

  /** backward: dx += g ⊙ keep (the gradient that reached x̃, masked and scaled as forward). */
  public static void addMasked(INDArray dx, Buf g, Buf keep, int rows, int width) {
    if (Kernels.nd4j()) {
      OpKernels.rows(dx, rows, width).addi(OpKernels.rows(g.arr, rows, width).mul(OpKernels.rows(keep.arr, rows,
          width)));
      return;
    }
    Buf d = Buf.of(dx);
    Par.rows(rows, (lo, hi) -> {
      for (int i = lo * width; i < hi * width; i++) {
        d.set(i, d.get(i) + g.get(i) * keep.get(i));
      }
    });
  }
}
