package ai.lathe.merge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** TIES's steps against Yadav et al. 2023 (arXiv:2306.01708, Algorithm 1), written out naively. */
class TiesTest {
  /** The paper's algorithm in double, for tasks τ_t with weight 1 and λ = 1. */
  static double[] paperTies(List<float[]> tasks, double density) {
    int n = tasks.get(0).length;
    List<double[]> trimmed = new ArrayList<>();
    for (float[] t : tasks) {
      // keep the top-k% entries by magnitude, reset the rest to 0
      int k = (int) (density * n);
      Integer[] idx = new Integer[n];
      for (int i = 0; i < n; i++) {
        idx[i] = i;
      }
      Arrays.sort(idx, Comparator.comparingDouble(i -> -Math.abs(t[i])));
      double[] r = new double[n];
      for (int i = 0; i < k; i++) {
        r[idx[i]] = t[idx[i]];
      }
      trimmed.add(r);
    }
    double[] merged = new double[n];
    for (int p = 0; p < n; p++) {
      double sum = 0;
      for (double[] t : trimmed) {
        sum += t[p];
      }
      double gamma = Math.signum(sum); // elect: the sign of the summed trimmed values
      double agree = 0;
      int count = 0;
      for (double[] t : trimmed) {
        if (Math.signum(t[p]) == gamma && t[p] != 0) { // disjoint: only the agreeing, non-zero entries
          agree += t[p];
          count++;
        }
      }
      merged[p] = count == 0 ? 0 : agree / count;
    }
    return merged;
  }

  @Test
  void mergeMatchesThePublishedAlgorithm() {
    Random r = new Random(7);
    List<float[]> tasks = new ArrayList<>();
    for (int t = 0; t < 4; t++) {
      float[] x = new float[500];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) r.nextGaussian();
      }
      tasks.add(x);
    }
    double[] want = paperTies(tasks, 0.3);
    float[] got = MergeMethod.TIES.merge(tasks, new double[] {1, 1, 1, 1}, new double[] {0.3, 0.3, 0.3, 0.3},
        new MergeMethod.Params(true, "total", 1.0, 0), 0);
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i], got[i], 1e-6, "entry " + i);
    }
  }

  @Test
  void stepsByHand() {
    // three task vectors after trimming; entry 0: votes +3 −1 (elect +, mean of 1 and 2), entry 1:
    // +1 −4 (elect −, only −4 counts), entry 2: all zero (nothing agrees: 0), entry 3: tie → +
    float[][] x = {{1, 1, 0, 2}, {2, -4, 0, -2}, {-1, 0, 0, 0}};
    assertEquals(1, Ties.electSign(x, 0, true));
    assertEquals(-1, Ties.electSign(x, 1, true));
    assertEquals(1, Ties.electSign(x, 3, true));
    // by frequency, entry 1 has one positive and one negative: a tie elects +
    assertEquals(1, Ties.electSign(x, 1, false));
    assertArrayEquals(new float[] {1.5f, -4f, 0f, 2f}, Ties.disjointMean(x, new double[] {1, 1, 1}, true));
    // weights divide by the agreeing weights only: entry 0 with w = (1, 3, 1): (1 + 2) / 4
    assertEquals(0.75f, Ties.disjointMean(x, new double[] {1, 3, 1}, true)[0]);
    assertArrayEquals(new float[] {0, 0, 0, 0, 5, -6}, Ties.trim(new float[] {1, -2, 3, 0.5f, 5, -6}, 2 / 6.0));
  }
}
