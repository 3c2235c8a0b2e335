package ai.lathe.model.eval;

import java.io.Serializable;
import java.util.Locale;

/**
 * How an item judged in both orders becomes an outcome ({@code judge.calibration}).
 *
 * <p>{@code none}: the orders must agree ({@link Outcome#of}); disagreeing orders are
 * inconsistent. {@code balanced}: balanced position calibration (Wang et al. 2023, "Large
 * Language Models are not Fair Evaluators", §3.2), done in log-odds. With
 * l1 = logit p(A | candidate first) and l2 = logit p(A | baseline first), a judge whose preference
 * for the candidate is c and whose preference for position A is b gives l1 = c + b and l2 = −c + b,
 * so s = (l1 − l2) / 2 = c: the bias cancels. The outcome is a win when s > margin, a loss when
 * s < −margin, else a tie; b = (l1 + l2) / 2 is the item's position bias.
 *
 * <p>margin is in log-odds. Its default 0 ties only at s = 0 exactly, which is what two identical
 * answers give (both orders render the same judge prompt), as {@code none} ties only at p = ½.
 */
public record Calibration(Mode mode, double margin) implements Serializable {
  public enum Mode { NONE, BALANCED }

  public static final Calibration NONE = new Calibration(Mode.NONE, 0.0);

  public Calibration {
    if (mode == null) {
      throw new IllegalArgumentException("judge.calibration must be none or balanced");
    }
    if (!(margin >= 0) || Double.isInfinite(margin)) {
      throw new IllegalArgumentException("judge.margin must be a finite log-odds >= 0, got " + margin);
    }
  }

  /** From the keys judge.calibration (none | balanced) and judge.margin. */
  public static Calibration of(String mode, double margin) {
    Mode m = switch (mode == null ? "" : mode.toLowerCase(Locale.ROOT)) {
      case "none" -> Mode.NONE;
      case "balanced" -> Mode.BALANCED;
      default -> throw new IllegalArgumentException("judge.calibration must be none or balanced, got '" + mode + "'");
    };
    return new Calibration(m, margin);
  }

  public String word() {
    return mode.name().toLowerCase(Locale.ROOT);
  }

  /** The item's outcome under this rule. */
  public Outcome decide(double pACandidateFirst, double pABaselineFirst) {
    Outcome raw = Outcome.of(pACandidateFirst, pABaselineFirst); // checks the probabilities are finite
    if (mode == Mode.NONE) {
      return raw;
    }
    double s = score(pACandidateFirst, pABaselineFirst);
    // NaN: both orders saturated to the same label (|log-odds| beyond double's reach): no content signal
    return s > margin ? Outcome.WIN : s < -margin ? Outcome.LOSS : Outcome.TIE;
  }

  /**
   * The candidate's probability of being preferred under this rule: none, the mean over both
   * orders (p1 + 1 − p2) / 2; balanced, sigmoid(s), the preference with the position bias removed.
   */
  public double preference(double pACandidateFirst, double pABaselineFirst) {
    if (mode == Mode.NONE) {
      return (pACandidateFirst + (1 - pABaselineFirst)) / 2;
    }
    double s = score(pACandidateFirst, pABaselineFirst);
    return Double.isNaN(s) ? 0.5 : Judge.probFirst(s, 0);
  }

  /** s = (logit p1 − logit p2) / 2: the candidate's preference in log-odds, position bias removed. */
  public static double score(double pACandidateFirst, double pABaselineFirst) {
    return (logit(pACandidateFirst) - logit(pABaselineFirst)) / 2;
  }

  /** b = (logit p1 + logit p2) / 2: the judge's preference for position A on this item, in log-odds. */
  public static double positionBias(double pACandidateFirst, double pABaselineFirst) {
    return (logit(pACandidateFirst) + logit(pABaselineFirst)) / 2;
  }

  /** log(p / (1 − p)), accurate near 0 (log1p); ±∞ at p = 0 or 1. */
  public static double logit(double p) {
    return Math.log(p) - Math.log1p(-p);
  }
}
