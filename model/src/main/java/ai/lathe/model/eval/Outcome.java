package ai.lathe.model.eval;

/**
 * The outcome of one item judged in both orders. The candidate is preferred in the first order
 * (candidate = A) when p(A) > 0.5 and in the second (baseline = A) when p(A) < 0.5; both orders
 * agreeing give a win or a loss, disagreeing orders are inconsistent, and an exact 0.5 in either
 * order is a tie. Inconsistent items count as ties in the win rate.
 */
public enum Outcome {
  WIN(1.0), LOSS(0.0), TIE(0.5), INCONSISTENT(0.5);

  /** The item's value in the win rate: 1, 0 or ½. */
  public final double value;

  Outcome(double value) {
    this.value = value;
  }

  public static Outcome of(double pACandidateFirst, double pABaselineFirst) {
    int first = Double.compare(pACandidateFirst, 0.5);
    int second = Double.compare(0.5, pABaselineFirst);
    if (!Double.isFinite(pACandidateFirst) || !Double.isFinite(pABaselineFirst)) {
      throw new IllegalArgumentException("non-finite verdict probabilities " + pACandidateFirst + ", "
          + pABaselineFirst);
    }
    if (first == 0 || second == 0) {
      return TIE;
    }
    if (first > 0 && second > 0) {
      return WIN;
    }
    if (first < 0 && second < 0) {
      return LOSS;
    }
    return INCONSISTENT;
  }

  /** A consistent verdict: a win or a loss. */
  public boolean decided() {
    return this == WIN || this == LOSS;
  }

  public String word() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
