package ai.lathe.model.eval;

import java.util.Arrays;
import java.util.List;

/**
 * What the judge's position bias did to a set of items, whichever rule decided them: how many the
 * uncalibrated rule calls inconsistent, the mean position bias b (log-odds towards position A)
 * and the distribution of the bias-free score s (min, quartiles, max by the nearest-rank rule on
 * the items whose s is defined), all from {@link Calibration}.
 */
public record BiasReport(int n, int rawInconsistent, double meanPositionBias, double[] scoreQuantiles) {
  /** The quantiles reported: min, lower quartile, median, upper quartile, max. */
  public static final double[] QS = {0, 0.25, 0.5, 0.75, 1};

  /** verdicts: {pACandidateFirst, pABaselineFirst} per item. */
  public static BiasReport of(List<double[]> verdicts) {
    int inc = 0;
    double biasSum = 0;
    int biasN = 0;
    double[] s = new double[verdicts.size()];
    int sn = 0;
    for (double[] v : verdicts) {
      inc += Outcome.of(v[0], v[1]) == Outcome.INCONSISTENT ? 1 : 0;
      double b = Calibration.positionBias(v[0], v[1]);
      if (Double.isFinite(b)) {
        biasSum += b;
        biasN++;
      }
      double x = Calibration.score(v[0], v[1]);
      if (!Double.isNaN(x)) {
        s[sn++] = x;
      }
    }
    double[] sorted = Arrays.copyOf(s, sn);
    Arrays.sort(sorted);
    double[] q = new double[QS.length];
    for (int i = 0; i < q.length; i++) {
      q[i] = sn == 0 ? Double.NaN : sorted[(int) Math.round(QS[i] * (sn - 1))];
    }
    return new BiasReport(verdicts.size(), inc, biasN == 0 ? Double.NaN : biasSum / biasN, q);
  }
}
