package ai.lathe.model.train;

/**
 * Preference objectives on summed completion log-probs, as TRL defines them, with their
 * gradients with respect to the policy's log-probs (which the engine turns into per-token
 * weights: for a sequence with dL/dlogp = g, each of its target NLLs gets weight −g).
 * h = (π_c − π_r) − (ref_c − ref_r) is the log-ratio margin.
 * <ul>
 *   <li>sigmoid (DPO, Rafailov et al. 2023, arXiv:2305.18290) with label smoothing ε (cDPO):
 *       −(1−ε)·log σ(βh) − ε·log σ(−βh)</li>
 *   <li>robust (Chowdhury et al. 2024, arXiv:2403.00409): (−(1−ε)·log σ(βh) + ε·log σ(−βh))/(1−2ε)</li>
 *   <li>hinge (SLiC, Zhao et al. 2023, arXiv:2305.10425): max(0, 1 − βh)</li>
 *   <li>ipo (Azar et al. 2023, arXiv:2310.12036): (h − 1/(2β))², on length-averaged log-probs</li>
 * </ul>
 * Losses are averaged over the batch.
 */
public final class PreferenceLoss {
  /** A batch's loss, gradients and TRL's reward metrics. */
  public record Result(double loss, double[] dChosen, double[] dRejected, double rewardsChosen,
      double rewardsRejected, double rewardsMargins, double rewardsAccuracies) {}

  private PreferenceLoss() {}

  static double logSigmoid(double x) {
    return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
  }

  static double sigmoid(double x) {
    return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
  }

  /**
   * Pairwise losses; for ipo pass length-averaged log-probs. pc, pr: policy chosen/rejected;
   * rc, rr: reference.
   */
  public static Result dpo(String type, double beta, double labelSmoothing, double[] pc, double[] pr, double[] rc,
      double[] rr) {
    int n = pc.length;
    double[] dc = new double[n];
    double[] dr = new double[n];
    double loss = 0;
    double rwC = 0;
    double rwR = 0;
    double acc = 0;
    double eps = labelSmoothing;
    for (int i = 0; i < n; i++) {
      double h = (pc[i] - pr[i]) - (rc[i] - rr[i]);
      double l;
      double dh; // dL_i/dh
      switch (type) {
        case "sigmoid" -> {
          l = -(1 - eps) * logSigmoid(beta * h) - eps * logSigmoid(-beta * h);
          dh = -(1 - eps) * beta * sigmoid(-beta * h) + eps * beta * sigmoid(beta * h);
        }
        case "robust" -> {
          if (eps >= 0.5) {
            throw new IllegalArgumentException("robust DPO needs label_smoothing < 0.5");
          }
          l = (-(1 - eps) * logSigmoid(beta * h) + eps * logSigmoid(-beta * h)) / (1 - 2 * eps);
          dh = (-(1 - eps) * beta * sigmoid(-beta * h) - eps * beta * sigmoid(beta * h)) / (1 - 2 * eps);
        }
        case "hinge" -> {
          l = Math.max(0, 1 - beta * h);
          dh = 1 - beta * h > 0 ? -beta : 0;
        }
        case "ipo" -> {
          double t = h - 1 / (2 * beta);
          l = t * t;
          dh = 2 * t;
        }
        default -> throw new IllegalArgumentException("unknown loss type '" + type + "' (sigmoid, ipo, hinge, robust)");
      }
      loss += l / n;
      dc[i] = dh / n;
      dr[i] = -dh / n;
      double cr = beta * (pc[i] - rc[i]);
      double rj = beta * (pr[i] - rr[i]);
      rwC += cr / n;
      rwR += rj / n;
      acc += (cr > rj ? 1.0 : 0.0) / n;
    }
    return new Result(loss, dc, dr, rwC, rwR, rwC - rwR, acc);
  }

  /**
   * KTO (Ethayarajh et al. 2024, arXiv:2402.01306) as TRL computes it: the KL term is the
   * batch mean of (policy − reference) log-probs on mismatched prompt/completion pairs, clamped
   * at 0 and not differentiated; desirable: w_d·(1 − σ(β(logr − KL))), undesirable:
   * w_u·(1 − σ(β(KL − logr))), averaged over all examples. Returns dL/dπ per example in dChosen.
   */
  public static Result kto(double beta, double desirableWeight, double undesirableWeight, double[] policy,
      double[] ref, boolean[] desirable, double[] klPolicy, double[] klRef) {
    int n = policy.length;
    double kl = 0;
    for (int i = 0; i < klPolicy.length; i++) {
      kl += (klPolicy[i] - klRef[i]) / klPolicy.length;
    }
    kl = Math.max(0, kl);
    double[] d = new double[n];
    double loss = 0;
    double rwC = 0;
    double rwR = 0;
    int nc = 0;
    int nr = 0;
    for (int i = 0; i < n; i++) {
      double logr = policy[i] - ref[i];
      if (desirable[i]) {
        double s = sigmoid(beta * (logr - kl));
        loss += desirableWeight * (1 - s) / n;
        d[i] = -desirableWeight * beta * s * (1 - s) / n;
        rwC += beta * logr;
        nc++;
      } else {
        double s = sigmoid(beta * (kl - logr));
        loss += undesirableWeight * (1 - s) / n;
        d[i] = undesirableWeight * beta * s * (1 - s) / n;
        rwR += beta * logr;
        nr++;
      }
    }
    double mc = nc == 0 ? Double.NaN : rwC / nc;
    double mr = nr == 0 ? Double.NaN : rwR / nr;
    return new Result(loss, d, new double[0], mc, mr, mc - mr, Double.NaN);
  }
}
