package ai.lathe.model.train;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.adapter.Param;
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
  private final AdamW opt;
  private final ai.lathe.model.adapter.RankAllocator adaLora;
  private boolean decideMasks = true;
  private final LrSchedule schedule;
  private final List<Param> params;
  private int[] rows; // target rows of the last policy forward
  private Batch lastBatch;

  protected PreferenceTrainer(LlamaModel model, SftTrainer.Options o) {
    this.model = model;
    this.o = o;
    this.params = model.params();
    this.opt = o.adamW(params);
    this.schedule = new LrSchedule(o.lr(), o.warmupSteps(), Math.max(1, o.totalSteps()), o.minLrRatio());
    this.adaLora = model.adapters() == null ? null
        : ai.lathe.model.adapter.RankAllocator.of(model.adapters(), Math.max(1, o.totalSteps()));
  }

  /** AdaLoRA's allocator (null for other adapters). */
  public ai.lathe.model.adapter.RankAllocator adaLora() {
    return adaLora;
  }

  /**
   * A distributed partition's trainer: AdaLoRA's importance EMAs are updated each step but the
   * masks are decided on the driver from the averaged EMAs (RankAllocator.allocateRound).
   */
  public void leaveMasksToDriver() {
    decideMasks = false;
  }

  public AdamW optimizer() {
    return opt;
  }

  /**
   * Forward (training when grad), loss and metrics of one micro-batch; when grad, runs the
   * backward with the loss scaled by scale. Returns the number of tokens it ran.
   */
  protected abstract long micro(List<E> mb, boolean grad, double scale, long seed, MetricSums m);

  /** One optimizer step over the micro-batches. */
  public Stats step(List<List<E>> microBatches) {
    for (Param p : params) {
      p.grad().assign(0);
    }
    long stepNo = opt.stepCount();
    MetricSums m = new MetricSums();
    long tokens = 0;
    for (int i = 0; i < microBatches.size(); i++) {
      tokens += micro(microBatches.get(i), true, 1.0 / microBatches.size(), o.seed() * 1_000_003L + stepNo * 131 + i, m);
    }
    if (adaLora != null) {
      adaLora.addOrthGradients(); // AdaLoRA: the loss includes orth_reg_weight·R (PEFT)
    }
    double norm = AdamW.clipGradNorm(params, o.maxGradNorm());
    double lr = schedule.at(stepNo);
    opt.step(lr);
    if (adaLora != null) {
      adaLora.afterStep(stepNo, decideMasks); // PEFT's update_and_allocate after optimizer.step()
    }
    return new Stats(m, norm, lr, tokens);
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
