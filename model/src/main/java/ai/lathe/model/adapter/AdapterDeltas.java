package ai.lathe.model.adapter;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The dense weight updates of the adapters as pure functions on row-major [out, in] float
 * arrays (PEFT's layout: a row per output feature), shared by merging and the adapter modules.
 * <ul>
 *   <li>LoRA (Hu et al. 2021): ΔW = s·B·A.
 *   <li>DoRA (Liu et al. 2024, eq. 5): W' = m ⊙ (W + ΔW) / ‖W + ΔW‖, the norm taken per output
 *       row (PEFT's weight-norm over the input dimension), so W' = c ⊙ (W + ΔW) with
 *       c_j = m_j / ‖W_j + ΔW_j‖, and DoRA's update is W' − W.
 * </ul>
 */
public final class AdapterDeltas {
  private AdapterDeltas() {}

  /** LoRA's ΔW = s·B·A, [out, in], from A [r, in] and B [out, r] (row-major). */
  public static float[] lora(float[] a, float[] b, int out, int r, int in, double s) {
    INDArray aa = Nd4j.create(a, new long[] {r, in}, 'c');
    INDArray bb = Nd4j.create(b, new long[] {out, r}, 'c');
    INDArray dw = Nd4j.zeros(DataType.FLOAT, out, in);
    Nd4j.gemm(bb, aa, dw, false, false, s, 0.0);
    return dw.data().asFloat();
  }

  /** DoRA's row scale c_j = m_j / n_j, with n_j = ‖W_j + ΔW_j‖. */
  public static double magnitudeScale(double m, double norm) {
    return m / norm;
  }

  /** DoRA's update in place: d ← c ⊙ (W + d) − W with c_j = m_j / ‖W_j + d_j‖ (norms in double). */
  public static void doraInPlace(float[] w, float[] d, float[] m, int out, int in) {
    for (int j = 0; j < out; j++) {
      double n = 0;
      for (int k = 0; k < in; k++) {
        double v = w[j * in + k] + d[j * in + k];
        n += v * v;
      }
      double c = magnitudeScale(m[j], Math.sqrt(n));
      for (int k = 0; k < in; k++) {
        int i = j * in + k;
        d[i] = (float) (c * (w[i] + d[i]) - w[i]);
      }
    }
  }
}
