package ai.lathe.merge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class LowRankTest {
  static float[] lowRankPlusNoise(int out, int in, int rank, double noise, long seed) {
    Random r = new Random(seed);
    double[][] u = new double[out][rank];
    double[][] v = new double[rank][in];
    for (double[] row : u) {
      for (int j = 0; j < rank; j++) {
        row[j] = r.nextGaussian();
      }
    }
    for (double[] row : v) {
      for (int j = 0; j < in; j++) {
        row[j] = r.nextGaussian();
      }
    }
    float[] m = new float[out * in];
    for (int i = 0; i < out; i++) {
      for (int j = 0; j < in; j++) {
        double s = 0;
        for (int k = 0; k < rank; k++) {
          s += u[i][k] * v[k][j];
        }
        m[i * in + j] = (float) (s + noise * r.nextGaussian());
      }
    }
    return m;
  }

  /** ‖m − B·A‖_F / ‖m‖_F computed here, independently of LowRank. */
  static double measured(float[] m, LowRank.Factors f, int out, int in) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < out; i++) {
      for (int j = 0; j < in; j++) {
        double s = 0;
        for (int k = 0; k < f.rank(); k++) {
          s += f.b()[i * f.rank() + k] * f.a()[k * in + j];
        }
        double d = m[i * in + j] - s;
        num += d * d;
        den += (double) m[i * in + j] * m[i * in + j];
      }
    }
    return Math.sqrt(num / den);
  }

  @Test
  void fullRankReproducesTheMatrix() {
    float[] m = lowRankPlusNoise(20, 30, 20, 0.5, 1);
    LowRank.Factors f = LowRank.factor(m, 20, 30, 20, 0);
    assertTrue(f.relativeError() < 1e-6, "error " + f.relativeError());
    assertTrue(measured(m, f, 20, 30) < 1e-6);
  }

  @Test
  void reportedErrorIsTheMeasuredOne() {
    float[] m = lowRankPlusNoise(40, 50, 10, 0.3, 2);
    for (int r : new int[] {2, 5, 10}) {
      LowRank.Factors f = LowRank.factor(m, 40, 50, r, 0);
      assertEquals(measured(m, f, 40, 50), f.relativeError(), 1e-6, "rank " + r);
    }
  }

  @Test
  void randomizedPathRecoversALowRankMatrix() {
    int out = 600;
    int in = 700;
    float[] m = lowRankPlusNoise(out, in, 8, 0.0, 3);
    LowRank.Factors f = LowRank.factor(m, out, in, 8, 0);
    assertTrue(f.relativeError() < 1e-5, "error " + f.relativeError());
    float[] noisy = lowRankPlusNoise(out, in, 8, 0.5, 4);
    LowRank.Factors g = LowRank.factor(noisy, out, in, 8, 0);
    assertEquals(measured(noisy, g, out, in), g.relativeError(), 1e-6);
  }
}
