package ai.lathe.model.train;

import ai.lathe.model.LlamaModel;
import java.util.Arrays;
import java.util.List;

/**
 * Pairwise preference optimisation (the DPO family, see {@link PreferenceLoss}) against
 * precomputed reference log-probs: chosen and rejected sequences run as one batch. For ipo the
 * log-probs (policy and reference) are averaged over completion tokens, as TRL does. Metrics as
 * TRL names them: loss, rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies,
 * logps/chosen, logps/rejected.
 */
public final class DpoTrainer extends PreferenceTrainer<DpoTrainer.Pair> {
  /** One pair: full sequences, where their completions start, and the reference log-probs (sums). */
  public record Pair(int[] chosen, int chosenStart, int[] rejected, int rejectedStart, double refChosen,
      double refRejected) implements java.io.Serializable {
    /** Whether both sequences start with the same prompt tokens. */
    public boolean sharesPrompt() {
      return chosenStart == rejectedStart
          && Arrays.equals(chosen, 0, chosenStart, rejected, 0, rejectedStart);
    }
  }

  private final String lossType;
  private final double beta;
  private final double labelSmoothing;

  public DpoTrainer(LlamaModel model, SftTrainer.Options o, String lossType, double beta, double labelSmoothing) {
    super(model, o);
    if (!List.of("sigmoid", "ipo", "hinge", "robust").contains(lossType)) {
      throw new IllegalArgumentException("unknown loss type '" + lossType + "' (sigmoid, ipo, hinge, robust)");
    }
    if (beta <= 0 || labelSmoothing < 0 || labelSmoothing >= (lossType.equals("robust") ? 0.5 : 1)) {
      throw new IllegalArgumentException("need beta > 0 and 0 <= label_smoothing < " + (lossType.equals("robust") ? "0.5" : "1"));
    }
    this.lossType = lossType;
    this.beta = beta;
    this.labelSmoothing = labelSmoothing;
  }

  @Override
  protected long micro(List<Pair> pairs, boolean grad, double scale, long seed, MetricSums m) {
    int n = pairs.size();
    List<int[]> ids = list();
    int[] starts = new int[2 * n];
    for (int i = 0; i < n; i++) {
      ids.add(pairs.get(i).chosen());
      starts[i] = pairs.get(i).chosenStart();
    }
    for (int i = 0; i < n; i++) {
      ids.add(pairs.get(i).rejected());
      starts[n + i] = pairs.get(i).rejectedStart();
    }
    double[][] pl = policy(batch(ids, starts), grad, seed);
    boolean avg = lossType.equals("ipo");
    double[] pc = new double[n];
    double[] pr = new double[n];
    double[] rc = new double[n];
    double[] rr = new double[n];
    for (int i = 0; i < n; i++) {
      double lc = avg ? Math.max(1, pl[1][i]) : 1;
      double lr = avg ? Math.max(1, pl[1][n + i]) : 1;
      pc[i] = pl[0][i] / lc;
      pr[i] = pl[0][n + i] / lr;
      rc[i] = pairs.get(i).refChosen() / lc;
      rr[i] = pairs.get(i).refRejected() / lr;
    }
    PreferenceLoss.Result r = PreferenceLoss.dpo(lossType, beta, labelSmoothing, pc, pr, rc, rr);
    if (grad) {
      double[] d = new double[2 * n];
      for (int i = 0; i < n; i++) {
        d[i] = r.dChosen()[i] / (avg ? Math.max(1, pl[1][i]) : 1);
        d[n + i] = r.dRejected()[i] / (avg ? Math.max(1, pl[1][n + i]) : 1);
      }
      backward(d, scale);
    }
    m.add("loss", r.loss(), n).add("rewards/chosen", r.rewardsChosen(), n).add("rewards/rejected", r.rewardsRejected(), n)
        .add("rewards/margins", r.rewardsMargins(), n).add("rewards/accuracies", r.rewardsAccuracies(), n)
        .add("logps/chosen", Arrays.stream(pc).sum() / n, n).add("logps/rejected", Arrays.stream(pr).sum() / n, n);
    return tokens(ids);
  }

  /** Per-sequence log-probs of the policy (no gradient): {chosen[], rejected[]}. */
  public double[][] logProbs(List<Pair> pairs) {
    int n = pairs.size();
    int[] starts = new int[2 * n];
    List<int[]> ordered = list();
    for (int i = 0; i < n; i++) {
      ordered.add(pairs.get(i).chosen());
      starts[i] = pairs.get(i).chosenStart();
    }
    for (int i = 0; i < n; i++) {
      ordered.add(pairs.get(i).rejected());
      starts[n + i] = pairs.get(i).rejectedStart();
    }
    double[] lp = model.sequenceLogProbs(batch(ordered, starts));
    return new double[][] {Arrays.copyOfRange(lp, 0, n), Arrays.copyOfRange(lp, n, 2 * n)};
  }
}
