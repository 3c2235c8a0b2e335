package ai.lathe.merge;

/**
 * TIES-Merging's three steps as pure functions (Yadav et al. 2023, "Resolving Interference When
 * Merging Models", arXiv:2306.01708, Algorithm 1), over k weighted task vectors x[i] of one
 * module, entry by entry:
 * <ol>
 *   <li>trim: keep the density share of each vector's largest magnitudes ({@link Sparsify#magnitude});
 *   <li>elect sign: γ_j = sgn(Σ_i x_ij) ("total", the paper's), or the sign of the count of
 *       positive minus negative entries ("frequency", mergekit's option); a tie elects +;
 *   <li>disjoint mean: the mean over only the vectors whose entry has the elected sign,
 *       Σ_{i∈A_j} x_ij / Σ_{i∈A_j} w_i with A_j = {i : sgn(x_ij) = γ_j} (w_i = 1: the paper's
 *       1/|A_j|); a zero (trimmed) entry is in no A_j; with A_j empty the divisor is 1.
 * </ol>
 * {@link MergeMethod#merge} is built from these; {@link MergeMethod#mergeInto} is its fast twin.
 */
public final class Ties {
  private Ties() {}

  /** Step 1: the trimmed vector (a new array). */
  public static float[] trim(float[] x, double density) {
    return Sparsify.magnitude(x, density);
  }

  /** Step 2 at entry j: +1 or −1. */
  public static double electSign(float[][] x, int j, boolean byTotal) {
    double vote = 0;
    for (float[] xi : x) {
      vote += byTotal ? xi[j] : Math.signum(xi[j]);
    }
    return vote >= 0 ? 1 : -1;
  }

  /** Step 3 at entry j: {sum of the agreeing entries, sum of their weights (1 when none agree)}. */
  public static double[] disjointSum(float[][] x, double[] w, int j, double elected) {
    double mixed = 0;
    double divisor = 0;
    for (int i = 0; i < x.length; i++) {
      if (Math.signum(x[i][j]) == elected) {
        mixed += x[i][j];
        divisor += w[i];
      }
    }
    return new double[] {mixed, divisor == 0 ? 1 : divisor};
  }

  /** Steps 2 and 3 over every entry, normalised: the disjoint mean (trimming is the caller's). */
  public static float[] disjointMean(float[][] x, double[] w, boolean byTotal) {
    float[] out = new float[x[0].length];
    for (int j = 0; j < out.length; j++) {
      double[] s = disjointSum(x, w, j, electSign(x, j, byTotal));
      out[j] = (float) (s[0] / s[1]);
    }
    return out;
  }
}
