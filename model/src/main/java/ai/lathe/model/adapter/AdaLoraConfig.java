package ai.lathe.model.adapter;

/**
 * AdaLoRA's own settings, with PEFT's field names and defaults (AdaLoraConfig): every module
 * starts at rank initR; after tinit warm-up steps the total rank budget falls on a cubic schedule
 * to targetR per module at step totalStep − tfinal, masking the lowest-scoring ranks every deltaT
 * steps; the last tfinal steps train with the final allocation. beta1/beta2 smooth the
 * sensitivity |w·∂L/∂w| and its uncertainty; orthRegWeight weighs the orthogonality penalty on
 * A and B. totalStep 0 means "the run's own step count" (PEFT requires it set). exportLora (Lathe's,
 * not PEFT's) also writes the equivalent plain LoRA folder inside the output (lora/).
 */
public record AdaLoraConfig(int initR, int targetR, int tinit, int tfinal, int deltaT, double beta1, double beta2,
    double orthRegWeight, int totalStep, boolean exportLora) implements java.io.Serializable {

  public static final AdaLoraConfig PEFT_DEFAULTS = new AdaLoraConfig(12, 8, 0, 0, 1, 0.85, 0.85, 0.5, 0);

  /** PEFT's fields only (no LoRA export beside the adapter). */
  public AdaLoraConfig(int initR, int targetR, int tinit, int tfinal, int deltaT, double beta1, double beta2,
      double orthRegWeight, int totalStep) {
    this(initR, targetR, tinit, tfinal, deltaT, beta1, beta2, orthRegWeight, totalStep, false);
  }

  public AdaLoraConfig {
    if (initR <= 0 || targetR <= 0 || targetR > initR) {
      throw new IllegalArgumentException("AdaLoRA needs 0 < target_r <= init_r, got init_r " + initR + ", target_r "
          + targetR);
    }
    if (tinit < 0 || tfinal < 0 || deltaT <= 0 || totalStep < 0) {
      throw new IllegalArgumentException("AdaLoRA tinit, tfinal, total_step must be >= 0 and deltaT > 0, got tinit "
          + tinit + ", tfinal " + tfinal + ", deltaT " + deltaT + ", total_step " + totalStep);
    }
    if (!(beta1 > 0 && beta1 < 1) || !(beta2 > 0 && beta2 < 1)) {
      throw new IllegalArgumentException("AdaLoRA beta1 and beta2 must be in (0, 1), got " + beta1 + ", " + beta2);
    }
    if (!(orthRegWeight >= 0)) {
      throw new IllegalArgumentException("AdaLoRA orth_reg_weight must be >= 0, got " + orthRegWeight);
    }
    if (totalStep > 0) {
      checkSchedule(tinit, tfinal, totalStep);
    }
  }

  /** PEFT's rule: the schedule must leave a budgeting phase, tinit < total_step − tfinal. */
  static void checkSchedule(int tinit, int tfinal, int total) {
    if (tinit >= total - tfinal) {
      throw new IllegalArgumentException("AdaLoRA schedule has no budgeting phase: tinit " + tinit
          + " must be < total_step " + total + " - tfinal " + tfinal + " (decrease tfinal/tinit or train longer)");
    }
  }

  /** The same settings with total_step fixed (when it was left to the run's step count). */
  public AdaLoraConfig withTotalStep(int total) {
    return new AdaLoraConfig(initR, targetR, tinit, tfinal, deltaT, beta1, beta2, orthRegWeight, total, exportLora);
  }

  /** What the schedule says at one step: the total rank budget and whether to mask now. */
  public record Budget(int budget, boolean mask) {}

  /**
   * PEFT's budget_schedule at (0-based) step: the initial budget up to tinit (no masking); the
   * target budget after total_step − tfinal (masking); in between
   * ⌊(init − target)·(1 − (step − tinit)/(total − tfinal − tinit))³ + target⌋, masking when
   * step % deltaT == 0.
   */
  public Budget budget(long step, int initBudget, int targetBudget) {
    if (totalStep <= 0) {
      throw new IllegalStateException("AdaLoRA total_step is not set");
    }
    if (step <= tinit) {
      return new Budget(initBudget, false);
    }
    if (step > totalStep - tfinal) {
      return new Budget(targetBudget, true);
    }
    double mul = 1 - (double) (step - tinit) / (totalStep - tfinal - tinit);
    int b = (int) ((initBudget - targetBudget) * (mul * mul * mul) + targetBudget);
    return new Budget(b, step % deltaT == 0);
  }
}
