package ai.lathe.model.train;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.adapter.Param;
import java.util.ArrayList;
import java.util.List;

/**
 * Pairwise preference optimisation steps on one machine: the policy's summed completion
 * log-probs of chosen and rejected sequences, a DPO-family loss against precomputed reference
 * log-probs, and its gradient pushed through the engine as per-token weights
 * (logp = −Σ nll, so a sequence with dL/dlogp = g gives each of its targets weight −g).
 */
public final class DpoTrainer {
  /** One pair: full sequences, where their completions start, and the reference log-probs. */
  public record Pair(int[] chosen, int chosenStart, int[] rejected, int rejectedStart, double refChosen,
      double refRejected) {}

  private final LlamaModel model;
  private final SftTrainer.Options o;
  private final String lossType;
  private final double beta;
  private final double labelSmoothing;
  private final AdamW opt;
  private final LrSchedule schedule;
  private final List<Param> params;

  public DpoTrainer(LlamaModel model, SftTrainer.Options o, String lossType, double beta, double labelSmoothing) {
    this.model = model;
    this.o = o;
    this.lossType = lossType;
    this.beta = beta;
    this.labelSmoothing = labelSmoothing;
    this.params = model.params();
    this.opt = new AdamW(params, 0.9, 0.999, 1e-8, o.weightDecay());
    this.schedule = new LrSchedule(o.lr(), o.warmupSteps(), Math.max(1, o.totalSteps()), o.minLrRatio());
  }

  /** Chosen sequences first, then rejected ones, as one batch. */
  static Batch batch(List<Pair> pairs, int seqLen) {
    List<int[]> ids = new ArrayList<>();
    int[] starts = new int[2 * pairs.size()];
    int max = 1;
    for (int i = 0; i < pairs.size(); i++) {
      ids.add(pairs.get(i).chosen());
      starts[i] = pairs.get(i).chosenStart();
      max = Math.max(max, pairs.get(i).chosen().length);
    }
    for (int i = 0; i < pairs.size(); i++) {
      ids.add(pairs.get(i).rejected());
      starts[pairs.size() + i] = pairs.get(i).rejectedStart();
      max = Math.max(max, pairs.get(i).rejected().length);
    }
    return Batch.of(ids, starts, Math.min(seqLen, ((max + 15) / 16) * 16), 0);
  }

  /** Per-sequence log-probs of the policy (no gradient). */
  public double[][] logProbs(List<Pair> pairs) {
    Batch b = batch(pairs, o.seqLen());
    double[] lp = model.sequenceLogProbs(b);
    int n = pairs.size();
    return new double[][] {java.util.Arrays.copyOfRange(lp, 0, n), java.util.Arrays.copyOfRange(lp, n, 2 * n)};
  }

  /** One optimizer step on a batch of pairs; returns the loss and TRL's reward metrics. */
  public PreferenceLoss.Result step(List<Pair> pairs) {
    for (Param p : params) {
      p.grad().assign(0);
    }
    int n = pairs.size();
    Batch b = batch(pairs, o.seqLen());
    long stepNo = opt.stepCount();
    double[] nll = model.forward(b, true, o.seed() * 1_000_003L + stepNo);
    int[] rows = targetRows(b);
    double[] lp = LlamaModel.sequenceLogProbs(b, rows, nll);
    double[] pc = java.util.Arrays.copyOfRange(lp, 0, n);
    double[] pr = java.util.Arrays.copyOfRange(lp, n, 2 * n);
    double[] rc = new double[n];
    double[] rr = new double[n];
    for (int i = 0; i < n; i++) {
      rc[i] = pairs.get(i).refChosen();
      rr[i] = pairs.get(i).refRejected();
    }
    PreferenceLoss.Result r = PreferenceLoss.dpo(lossType, beta, labelSmoothing, pc, pr, rc, rr);
    double[] w = new double[nll.length];
    for (int k = 0; k < rows.length; k++) {
      int seqIdx = rows[k] / b.seq();
      w[k] = -(seqIdx < n ? r.dChosen()[seqIdx] : r.dRejected()[seqIdx - n]);
    }
    model.backward(w);
    AdamW.clipGradNorm(params, o.maxGradNorm());
    opt.step(schedule.at(stepNo));
    return r;
  }

  /** Target positions in order, as the engine reports its NLLs. */
  static int[] targetRows(Batch b) {
    int[] rows = new int[b.targetCount()];
    int k = 0;
    for (int i = 0; i < b.targets().length; i++) {
      if (b.targets()[i] >= 0) {
        rows[k++] = i;
      }
    }
    return rows;
  }
}
