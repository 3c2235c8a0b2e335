package ai.lathe.model.eval;

/**
 * AlpacaEval 2's length-controlled win rate (Dubois et al. 2024, "length_controlled_minimal"
 * form): a logistic GLM of the preference y ∈ [0, 1] on an intercept θ and the squashed,
 * standardised length difference, logit P(candidate preferred) = θ + φ·tanh(Δ / sd(Δ)),
 * Δ = candidate length − baseline length (characters, sd with n − 1, not centred), fitted to the
 * soft labels by maximum likelihood; the length-controlled win rate is the prediction at zero
 * length difference, sigmoid(θ). AlpacaEval's leaderboard version adds an instruction-difficulty
 * term (a per-instruction table of its own benchmark) and an L1 penalty chosen by
 * cross-validation; here the fit has a fixed L2 penalty ½‖w‖² against C·Σ log-loss with C = 100
 * (sklearn's parametrisation), which keeps θ finite when every item is won.
 */
public final class LengthControl {
  public static final double C = 100.0;

  private LengthControl() {}

  /** The fitted (θ, φ). */
  public record Fit(double theta, double phi) {
    public double winRate() {
      return sigmoid(theta);
    }
  }

  /** tanh(Δ_i / sd(Δ)); all zeros when sd is 0 or there are fewer than two items. */
  public static double[] feature(double[] candLen, double[] baseLen) {
    int n = candLen.length;
    double[] d = new double[n];
    double mean = 0;
    for (int i = 0; i < n; i++) {
      d[i] = candLen[i] - baseLen[i];
      mean += d[i] / n;
    }
    double ss = 0;
    for (double v : d) {
      ss += (v - mean) * (v - mean);
    }
    double sd = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
    double[] x = new double[n];
    for (int i = 0; i < n; i++) {
      x[i] = sd > 0 ? Math.tanh(d[i] / sd) : 0;
    }
    return x;
  }

  /**
   * Minimises ½(θ² + φ²) + C·Σ −[y log σ(η) + (1 − y) log(1 − σ(η))], η = θ + φ·x, by Newton's
   * method (strictly convex: the penalty makes the Hessian positive definite).
   */
  public static Fit fit(double[] y, double[] x) {
    double t = 0;
    double f = 0;
    for (int it = 0; it < 200; it++) {
      double g0 = t;
      double g1 = f;
      double h00 = 1;
      double h01 = 0;
      double h11 = 1;
      for (int i = 0; i < y.length; i++) {
        double s = sigmoid(t + f * x[i]);
        double r = C * (s - y[i]);
        double w = C * s * (1 - s);
        g0 += r;
        g1 += r * x[i];
        h00 += w;
        h01 += w * x[i];
        h11 += w * x[i] * x[i];
      }
      double det = h00 * h11 - h01 * h01;
      double dt = (h11 * g0 - h01 * g1) / det;
      double df = (h00 * g1 - h01 * g0) / det;
      t -= dt;
      f -= df;
      if (Math.abs(dt) + Math.abs(df) < 1e-13) {
        break;
      }
    }
    return new Fit(t, f);
  }

  public static Fit fit(double[] y, double[] candLen, double[] baseLen) {
    return fit(y, feature(candLen, baseLen));
  }

  static double sigmoid(double z) {
    return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
  }
}
