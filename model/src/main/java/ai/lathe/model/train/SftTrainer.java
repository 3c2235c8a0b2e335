package ai.lathe.model.train;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.text.ChatTemplate.Tokens;
import java.util.ArrayList;
import java.util.List;

/**
 * Supervised fine-tuning steps on one machine: completion-only cross-entropy, mean over the
 * completion tokens of the whole (accumulated) batch, gradient clipping by global norm, AdamW
 * with warmup + cosine. The Spark trainer runs these same steps on each partition.
 */
public final class SftTrainer {
  /** Optimisation settings. */
  public record Options(int batchSize, int gradAccum, int seqLen, double lr, int warmupSteps,
      int totalSteps, double minLrRatio, double weightDecay, double maxGradNorm, long seed,
      double adamBeta1, double adamBeta2, double adamEpsilon)
      implements java.io.Serializable {
    public Options {
      if (batchSize <= 0 || gradAccum <= 0 || seqLen <= 1) {
        throw new IllegalArgumentException("batch_size, grad_accum must be positive and seq_len > 1");
      }
      if (!(adamBeta1 >= 0 && adamBeta1 < 1) || !(adamBeta2 >= 0 && adamBeta2 < 1) || !(adamEpsilon > 0)) {
        throw new IllegalArgumentException("train.adam_beta1 and train.adam_beta2 must be in [0, 1) and "
            + "train.adam_epsilon > 0");
      }
    }

    /** With AdamW's usual betas (0.9, 0.999) and epsilon 1e-8 (PEFT/TRL defaults). */
    public Options(int batchSize, int gradAccum, int seqLen, double lr, int warmupSteps, int totalSteps,
        double minLrRatio, double weightDecay, double maxGradNorm, long seed) {
      this(batchSize, gradAccum, seqLen, lr, warmupSteps, totalSteps, minLrRatio, weightDecay, maxGradNorm, seed, 0.9,
          0.999, 1e-8);
    }

    /** The optimizer these options describe, over params. */
    public AdamW adamW(List<Param> params) {
      return new AdamW(params, adamBeta1, adamBeta2, adamEpsilon, weightDecay);
    }

    /** The same options with another seed (a partition's dropout and data order). */
    public Options withSeed(long s) {
      return new Options(batchSize, gradAccum, seqLen, lr, warmupSteps, totalSteps, minLrRatio, weightDecay,
          maxGradNorm, s, adamBeta1, adamBeta2, adamEpsilon);
    }

    /**
     * The one parser of the train.* keys (seq_len, batch_size, grad_accum, lr, warmup_steps,
     * min_lr_ratio, weight_decay, max_grad_norm, seed), each defaulting to the job's value in
     * dflt (see ConfigReference); totalSteps is dflt's (the caller knows the data).
     */
    public static Options fromConfig(ai.lathe.model.Config c, Options dflt) {
      return new Options(c.integer("train.batch_size", dflt.batchSize()), c.integer("train.grad_accum", dflt.gradAccum()),
          c.integer("train.seq_len", dflt.seqLen()), c.number("train.lr", dflt.lr()),
          c.integer("train.warmup_steps", dflt.warmupSteps()), dflt.totalSteps(),
          c.number("train.min_lr_ratio", dflt.minLrRatio()), c.number("train.weight_decay", dflt.weightDecay()),
          c.number("train.max_grad_norm", dflt.maxGradNorm()), c.integer("train.seed", (int) dflt.seed()),
          c.number("train.adam_beta1", dflt.adamBeta1()), c.number("train.adam_beta2", dflt.adamBeta2()),
          c.number("train.adam_epsilon", dflt.adamEpsilon()));
    }

    /** The same options with the total step count fixed once the data is known. */
    public Options withTotalSteps(int total) {
      return new Options(batchSize, gradAccum, seqLen, lr, warmupSteps, total, minLrRatio, weightDecay, maxGradNorm,
          seed, adamBeta1, adamBeta2, adamEpsilon);
    }

    /** The same options with another warmup (sft-local's default depends on the step count). */
    public Options withWarmup(int warmup) {
      return new Options(batchSize, gradAccum, seqLen, lr, warmup, totalSteps, minLrRatio, weightDecay, maxGradNorm,
          seed, adamBeta1, adamBeta2, adamEpsilon);
    }
  }

  /** What one optimizer step did. */
  public record StepStats(long step, double loss, int targetTokens, int tokens, double gradNorm,
      double lr, double seconds) {}

  private final LlamaModel model;
  private final Options o;
  private final OptimizerStep step;

  public SftTrainer(LlamaModel model, Options o) {
    this.model = model;
    this.o = o;
    if (model.params().isEmpty()) {
      throw new IllegalArgumentException("nothing to train: the model has no adapters");
    }
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

  /** Pads a list of examples into one batch, the length rounded up to a multiple of 64 (at most seqLen). */
  public static Batch batch(List<Tokens> examples, int seqLen) {
    int max = 1;
    List<int[]> ids = new ArrayList<>();
    List<boolean[]> masks = new ArrayList<>();
    List<int[]> positions = new ArrayList<>();
    boolean packed = false;
    for (Tokens t : examples) {
      int len = Math.min(t.ids().length, seqLen);
      max = Math.max(max, len);
      ids.add(java.util.Arrays.copyOf(t.ids(), len));
      masks.add(java.util.Arrays.copyOf(t.train(), len));
      positions.add(t.positions() == null ? null : java.util.Arrays.copyOf(t.positions(), len));
      packed |= t.positions() != null;
    }
    int seq = Math.min(seqLen, ((max + 63) / 64) * 64);
    return Batch.ofMasks(ids, masks, packed ? positions : null, seq, 0);
  }

  /** One optimizer step over gradAccum micro-batches (each a list of examples). */
  public StepStats step(List<List<Tokens>> microBatches) {
    long t0 = System.nanoTime();
    List<Batch> batches = new ArrayList<>();
    int total = 0;
    int tokens = 0;
    for (List<Tokens> mb : microBatches) {
      Batch b = batch(mb, o.seqLen());
      batches.add(b);
      total += b.targetCount();
      for (Tokens t : mb) {
        tokens += Math.min(t.ids().length, o.seqLen());
      }
    }
    long stepNo = step.begin();
    double lossSum = 0;
    for (int i = 0; i < batches.size(); i++) {
      Batch b = batches.get(i);
      double[] nll = model.forward(b, true, step.microSeed(stepNo, i));
      if (nll.length == 0) {
        continue;
      }
      double[] w = new double[nll.length];
      java.util.Arrays.fill(w, 1.0 / Math.max(1, total));
      for (double x : nll) {
        lossSum += x;
      }
      model.backward(w);
    }
    OptimizerStep.Result r = step.finish(stepNo, total > 0);
    double norm = r.gradNorm();
    double lr = r.lr();
    return new StepStats(stepNo + 1, lossSum / Math.max(1, total), total, tokens, norm, lr,
        (System.nanoTime() - t0) / 1e9);
  }

  /** Mean completion-token NLL over examples (no dropout, no gradient). */
  public static double validationLoss(LlamaModel model, List<Tokens> examples, int batchSize, int seqLen) {
    double sum = 0;
    long count = 0;
    for (int i = 0; i < examples.size(); i += batchSize) {
      Batch b = batch(examples.subList(i, Math.min(examples.size(), i + batchSize)), seqLen);
      for (double x : model.forward(b, false, 0)) {
        sum += x;
        count++;
      }
    }
    return count == 0 ? Double.NaN : sum / count;
  }
}
