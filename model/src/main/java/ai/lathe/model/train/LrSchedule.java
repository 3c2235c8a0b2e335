package ai.lathe.model.train;

/**
 * Linear warmup then cosine decay, as transformers' get_cosine_schedule_with_warmup, with an
 * optional floor: lr(s) = base·s/warmup for s < warmup, else
 * base·(min + (1 − min)·½(1 + cos(π·progress))).
 */
public record LrSchedule(double base, int warmupSteps, int totalSteps, double minRatio) {
  public LrSchedule {
    if (base <= 0 || warmupSteps < 0 || totalSteps <= 0 || minRatio < 0 || minRatio > 1) {
      throw new IllegalArgumentException("invalid schedule: lr " + base + ", warmup " + warmupSteps
          + ", total " + totalSteps + ", min_lr_ratio " + minRatio);
    }
  }

  /** Learning rate for 0-based optimizer step s. */
  public double at(long s) {
    if (s < warmupSteps) {
      return base * (s + 1) / (double) (warmupSteps + 1);
    }
    double progress = Math.min(1.0, (s - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps));
    return base * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
  }
}
