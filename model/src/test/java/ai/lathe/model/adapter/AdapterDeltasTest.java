package ai.lathe.model.adapter;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** LoRA and DoRA updates against their published formulas, computed naively in double. */
class AdapterDeltasTest {
  static float[] gaussian(Random r, int n, double std) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (r.nextGaussian() * std);
    }
    return x;
  }

  /** ΔW_ij = s·Σ_k B_ik·A_kj (Hu et al. 2021). */
  static double[] naiveLora(float[] a, float[] b, int out, int r, int in, double s) {
    double[] d = new double[out * in];
    for (int i = 0; i < out; i++) {
      for (int j = 0; j < in; j++) {
        double acc = 0;
        for (int k = 0; k < r; k++) {
          acc += (double) b[i * r + k] * a[k * in + j];
        }
        d[i * in + j] = s * acc;
      }
    }
    return d;
  }

  @Test
  void loraAndDoraMatchThePublishedFormulas() {
    Random rng = new Random(3);
    int out = 6;
    int r = 2;
    int in = 5;
    float[] a = gaussian(rng, r * in, 1);
    float[] b = gaussian(rng, out * r, 1);
    float[] w = gaussian(rng, out * in, 1);
    float[] m = gaussian(rng, out, 1);
    double s = 0.75;
    double[] want = naiveLora(a, b, out, r, in, s);
    float[] got = AdapterDeltas.lora(a, b, out, r, in, s);
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i], got[i], 1e-5, "lora entry " + i);
    }
    // DoRA (Liu et al. 2024): W' = m ⊙ V / ‖V‖ with V = W + ΔW, the norm per output row; update W' − W
    float[] d = got.clone();
    AdapterDeltas.doraInPlace(w, d, m, out, in);
    for (int i = 0; i < out; i++) {
      double norm = 0;
      for (int j = 0; j < in; j++) {
        double v = w[i * in + j] + want[i * in + j];
        norm += v * v;
      }
      norm = Math.sqrt(norm);
      for (int j = 0; j < in; j++) {
        double v = w[i * in + j] + want[i * in + j];
        assertEquals(m[i] * v / norm - w[i * in + j], d[i * in + j], 1e-5, "dora entry " + i + "," + j);
      }
    }
  }
}
