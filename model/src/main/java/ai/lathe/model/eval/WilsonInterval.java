package ai.lathe.model.eval;

/**
 * The Wilson score interval (Wilson 1927) of a proportion p̂ observed on n items:
 * (p̂ + z²/2n ± z·√(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n). Unlike the normal interval p̂ ± z·SE it
 * always lies in [0, 1], is not empty at p̂ = 0 or 1, and keeps its coverage for small n and p̂ near
 * the ends (Newcombe 1998). An empty sample (n = 0) has no interval: both bounds NaN.
 */
public record WilsonInterval(double lower, double upper) {
  /** z of a two-sided 95% interval, Φ⁻¹(0.975). */
  public static final double Z95 = 1.959963984540054;

  public WilsonInterval {
    boolean empty = Double.isNaN(lower) && Double.isNaN(upper);
    if (!empty && !(0 <= lower && lower <= upper && upper <= 1)) {
      throw new IllegalArgumentException("a Wilson interval lies in [0, 1], got [" + lower + ", " + upper + "]");
    }
  }

  /**
   * The interval of p̂ over n items at z. The bounds are clamped to [0, 1] and are exactly 0 at
   * p̂ = 0 and exactly 1 at p̂ = 1 (where the formula gives them up to rounding).
   */
  public static WilsonInterval of(double pHat, int n, double z) {
    if (!(pHat >= 0 && pHat <= 1) || n < 0 || !(z > 0)) {
      throw new IllegalArgumentException("Wilson interval of p̂ = " + pHat + ", n = " + n + ", z = " + z
          + ": needs 0 <= p̂ <= 1, n >= 0, z > 0");
    }
    if (n == 0) {
      return new WilsonInterval(Double.NaN, Double.NaN);
    }
    double z2n = z * z / n;
    double center = (pHat + z2n / 2) / (1 + z2n);
    double half = z / (1 + z2n) * Math.sqrt(pHat * (1 - pHat) / n + z2n / (4.0 * n));
    double lo = pHat == 0 ? 0 : Math.max(0, center - half);
    double hi = pHat == 1 ? 1 : Math.min(1, center + half);
    return new WilsonInterval(lo, hi);
  }
}
