package ai.lathe.model.train;

import ai.lathe.model.LlamaModel;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.adapter.RankAllocator;
import java.util.List;

/**
 * The optimizer step every trainer shares (SFT, the DPO family, KTO), so that a trainer holds only
 * its loss: {@link #begin} zeroes the gradients; the trainer accumulates its loss's gradient over
 * the micro-batches (seeded by {@link #microSeed}); {@link #finish} adds AdaLoRA's orthogonality
 * gradient, clips by global norm (torch's clip_grad_norm_), applies AdamW at the scheduled rate
 * (warmup + cosine) and then AdaLoRA's update_and_allocate, in PEFT's order. The trainable tensors
 * are the model's params: its adapters, or its own weights in train.mode full.
 */
public final class OptimizerStep {
  /** What the step did: the gradient norm before clipping and the learning rate it used. */
  public record Result(double gradNorm, double lr) {}

  private final List<Param> params;
  private final AdamW opt;
  private final LrSchedule schedule;
  private final RankAllocator adaLora;
  private final long seed;
  private final double maxGradNorm;
  private boolean decideMasks = true;

  public OptimizerStep(LlamaModel model, SftTrainer.Options o) {
    this.params = model.params();
    this.opt = o.adamW(params);
    this.schedule = new LrSchedule(o.lr(), o.warmupSteps(), Math.max(1, o.totalSteps()), o.minLrRatio());
    this.adaLora = model.adapters() == null ? null : RankAllocator.of(model.adapters(), Math.max(1, o.totalSteps()));
    this.seed = o.seed();
    this.maxGradNorm = o.maxGradNorm();
  }

  public List<Param> params() {
    return params;
  }

  public AdamW optimizer() {
    return opt;
  }

  /** AdaLoRA's allocator (null for other adapters and in full mode). */
  public RankAllocator adaLora() {
    return adaLora;
  }

  /**
   * A distributed partition's step: AdaLoRA's importance EMAs are updated each step but the masks
   * are decided on the driver from the averaged EMAs (RankAllocator.allocateRound).
   */
  public void leaveMasksToDriver() {
    decideMasks = false;
  }

  /** Zeroes every gradient; returns the number of the step about to run (0-based). */
  public long begin() {
    for (Param p : params) {
      p.grad().assign(0);
    }
    return opt.stepCount();
  }

  /** The dropout seed of micro-batch i of step stepNo (step-pure: a resumed run draws the same masks). */
  public long microSeed(long stepNo, int i) {
    return seed * 1_000_003L + stepNo * 131 + i;
  }

  /**
   * Clip and update after the gradients of step stepNo are accumulated. apply false (a step that
   * saw no target token): the norm is reported but nothing moves, AdaLoRA's state included.
   */
  public Result finish(long stepNo, boolean apply) {
    if (adaLora != null && apply) {
      adaLora.addOrthGradients(); // AdaLoRA: the loss includes orth_reg_weight·R (PEFT)
    }
    double norm = AdamW.clipGradNorm(params, maxGradNorm);
    double lr = schedule.at(stepNo);
    if (apply) {
      opt.step(lr);
      if (adaLora != null) {
        adaLora.afterStep(stepNo, decideMasks); // PEFT's update_and_allocate after optimizer.step()
      }
    }
    return new Result(norm, lr);
  }
}
