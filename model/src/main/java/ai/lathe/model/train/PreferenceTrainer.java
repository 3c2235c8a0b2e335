package ai.lathe.model.train;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaModel;
import java.util.ArrayList;
import java.util.List;

/**
 * What the DPO family and KTO share: an optimizer step over gradient-accumulation micro-batches
 * of examples E, where each micro-batch's loss is a function of summed completion log-probs.
 * Its gradient reaches the engine as per-token weights (logp = −Σ nll, so a sequence with
 * dL/dlogp = g gives each of its target NLLs weight −g), scaled by 1/micro-batches.
 */
public abstract class PreferenceTrainer<E> {
  /** One step's metrics (weighted sums, mergeable), gradient norm before clipping, rate, tokens. */
  public record Stats(MetricSums metrics, double gradNorm, double lr, long tokens) {}

  protected final LlamaModel model;
  protected final SftTrainer.Options o;
  private final OptimizerStep step;
  private int[] rows; // target rows of the last policy forward
  private Batch lastBatch;

  protected PreferenceTrainer(LlamaModel model, SftTrainer.Options o) {
    this.model = model;
    this.o = o;
    this.step = new OptimizerStep(model, o);
  }

  /** AdaLoRA's allocator (null for other adapters). */
  public ai.lathe.model.adapter.RankAllocator adaLora() {
    return step.adaLora();
  }

  /** A distributed partition's trainer: AdaLoRA's masks are decided on the driver (see OptimizerStep). */
  public void leaveMasksToDriver() {
    step.leaveMasksToDriver();
  }

  public AdamW optimizer() {
    return step.optimizer();
  }

  /**
   * Forward (training when grad), loss and metrics of one micro-batch; when grad, runs the
   * backward with the loss scaled by scale. Returns the number of tokens it ran.
   */
  protected abstract long micro(List<E> mb, boolean grad, double scale, long seed, MetricSums m);

  /** One optimizer step over the micro-batches. */
  public Stats step(List<List<E>> microBatches) {
    long stepNo = step.begin();
    MetricSums m = new MetricSums();
    long tokens = 0;
    for (int i = 0; i < microBatches.size(); i++) {
      tokens += micro(microBatches.get(i), true, 1.0 / microBatches.size(), step.microSeed(stepNo, i), m);
    }
    OptimizerStep.Result r = step.finish(stepNo, true);
    return new Stats(m, r.gradNorm(), r.lr(), tokens);
  }

  /** Loss and metrics on held-out examples (no dropout, no gradient). */
  public MetricSums evaluate(List<E> examples, int batchSize) {
    MetricSums m = new MetricSums();
    for (int i = 0; i < examples.size(); i += batchSize) {
      micro(examples.subList(i, Math.min(examples.size(), i + batchSize)), false, 1, 0, m);
    }
    return m;
  }

  /** Sequences with their completion starts, padded to a multiple of 16 tokens. */
  protected Batch batch(List<int[]> ids, int[] starts) {
    int max = 1;
    for (int[] s : ids) {
      if (s.length > o.seqLen()) {
        throw new IllegalArgumentException("a sequence of " + s.length + " tokens is longer than seq_len " + o.seqLen()
            + " (preference losses need whole completions)");
      }
      max = Math.max(max, s.length);
    }
    return Batch.of(ids, starts, Math.min(o.seqLen(), ((max + 15) / 16) * 16), 0);
  }

  /** Policy forward: per-sequence log-probs and completion token counts. */
  protected double[][] policy(Batch b, boolean grad, long seed) {
    double[] nll = model.forward(b, grad, seed);
    rows = targetRows(b);
    double[] lp = LlamaModel.sequenceLogProbs(b, rows, nll);
    double[] len = new double[b.batch()];
    for (int r : rows) {
      len[r / b.seq()]++;
    }
    lastBatch = b;
    return new double[][] {lp, len};
  }

  /** Backward of Σ_s dLogp[s]·logp[s] for the last policy forward. */
  protected void backward(double[] dLogp, double scale) {
    double[] w = new double[rows.length];
    for (int k = 0; k < rows.length; k++) {
      w[k] = -scale * dLogp[rows[k] / lastBatch.seq()];
    }
    model.backward(w);
  }

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

  static long tokens(List<int[]> ids) {
    long n = 0;
    for (int[] s : ids) {
      n += s.length;
    }
    return n;
  }

  static List<int[]> list() {
    return new ArrayList<>();
  }
}
