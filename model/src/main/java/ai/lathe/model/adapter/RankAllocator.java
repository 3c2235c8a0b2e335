package ai.lathe.model.adapter;

import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.HostCopies;
import ai.lathe.model.nn.Kernels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdaLoRA's training-time rules over every AdaLoraModule of an adapter (PEFT's RankAllocator and
 * AdaLoraModel.update_and_allocate / forward): the orthogonality penalty, the importance EMAs, the
 * cubic budget and the masking of the lowest-scoring ranks. The budget counts ranks over all
 * modules: init = Σ init_r, target = target_r · (number of modules).
 */
public final class RankAllocator {
  private final AdaLoraConfig cfg;
  private final List<AdaLoraModule> modules;
  private final int initBudget;
  private final int targetBudget;

  public RankAllocator(AdaLoraConfig cfg, List<AdaLoraModule> modules) {
    if (cfg.totalStep() <= 0) {
      throw new IllegalArgumentException("AdaLoRA total_step must be set (> 0) before training");
    }
    if (modules.isEmpty()) {
      throw new IllegalArgumentException("AdaLoRA: the adapter has no modules");
    }
    this.cfg = cfg;
    this.modules = List.copyOf(modules);
    int init = 0;
    for (AdaLoraModule m : modules) {
      init += m.rank();
    }
    this.initBudget = init;
    this.targetBudget = cfg.targetR() * modules.size();
  }

  /** The allocator of an adapter's AdaLoRA modules with the run's total step count; null for other adapters. */
  public static RankAllocator of(AdapterSet set, int totalSteps) {
    AdaLoraConfig c = set.config().adalora();
    if (c == null) {
      return null;
    }
    return new RankAllocator(c.totalStep() > 0 ? c : c.withTotalStep(totalSteps), set.adaLoraModules());
  }

  public AdaLoraConfig config() {
    return cfg;
  }

  public List<AdaLoraModule> modules() {
    return modules;
  }

  public int initBudget() {
    return initBudget;
  }

  public int targetBudget() {
    return targetBudget;
  }

  public AdaLoraConfig.Budget budget(long step) {
    return cfg.budget(step, initBudget, targetBudget);
  }

  /** Ranks kept now, over all modules. */
  public int keptTotal() {
    int n = 0;
    for (AdaLoraModule m : modules) {
      n += m.keptCount();
    }
    return n;
  }

  // ---- orthogonality regulariser ------------------------------------------------------------

  /**
   * PEFT's penalty R = (1/N)·Σ_P ‖P·Pᵀ − I‖_F over the N matrices A (P = A, [r, r]) and B
   * (P = Bᵀ, i.e. BᵀB − I), the Frobenius norm itself, not its square. Adds the gradient of
   * w·R into the A and B gradients ({@link #orthPenalty} is the value). With M = A·Aᵀ − I
   * (symmetric): ∂‖M‖/∂A = 2·M·A/‖M‖; with M = BᵀB − I: ∂‖M‖/∂B = 2·B·M/‖M‖ (zero where ‖M‖ = 0).
   * On the nd4j kernels it runs on the device and reads nothing back.
   */
  public void addOrthGradients() {
    double w = cfg.orthRegWeight();
    if (w == 0) {
      return;
    }
    int n = 2 * modules.size();
    boolean device = Kernels.current() == Kernels.ND4J;
    for (AdaLoraModule m : modules) {
      if (device) {
        AdaLoraOps.orthTerm(m.a, m.ga, false, w / n);
        AdaLoraOps.orthTerm(m.b, m.inner().gb, true, w / n);
      } else {
        orthTerm(m.a, m.ga, false, w / n);
        orthTerm(m.b, m.inner().gb, true, w / n);
      }
    }
  }

  /** ‖P·Pᵀ − I‖_F for P = x (or xᵀ when columns), adding coef·∂/∂x into grad. */
  static double orthTerm(INDArray x, INDArray grad, boolean columns, double coef) {
    INDArray p = x.castTo(DataType.DOUBLE);
    INDArray cov = columns ? p.transpose().mmul(p) : p.mmul(p.transpose());
    INDArray mm = cov.subi(Nd4j.eye(cov.size(0)).castTo(DataType.DOUBLE));
    double norm = HostCopies.read(mm.norm2())[0]; // a counted read (the nd4j kernels keep it on the device)
    if (norm > 0 && coef != 0) {
      INDArray g = columns ? p.mmul(mm) : mm.mmul(p);
      grad.addi(g.muli(2 * coef / norm).castTo(grad.dataType()));
    }
    return norm;
  }

  /** The penalty's value w·R alone (tests, logging). */
  public double orthPenalty() {
    double sum = 0;
    for (AdaLoraModule m : modules) {
      sum += orthTerm(m.a, m.ga, false, 0) + orthTerm(m.b, m.inner().gb, true, 0);
    }
    return cfg.orthRegWeight() * sum / (2 * modules.size());
  }

  // ---- importance -----------------------------------------------------------------------------

  /**
   * PEFT's update_ipt for every entry of A, E and B: ipt = |w·g|, exp_avg_ipt ← β1·exp_avg_ipt +
   * (1−β1)·ipt, exp_avg_unc ← β2·exp_avg_unc + (1−β2)·|ipt − exp_avg_ipt| (the new exp_avg_ipt).
   */
  public void updateImportance() {
    boolean device = Kernels.current() == Kernels.ND4J;
    for (AdaLoraModule m : modules) {
      INDArray[] ws = {m.a, m.e, m.b};
      INDArray[] gs = {m.ga, m.ge, m.inner().gb};
      for (int t = 0; t < 3; t++) {
        if (device) {
          AdaLoraOps.updateImportance(ws[t], gs[t], m.expAvgIpt[t], m.expAvgUnc[t], cfg.beta1(), cfg.beta2());
          continue;
        }
        Buf w = Buf.of(ws[t]);
        Buf g = Buf.of(gs[t]);
        Buf avg = Buf.of(m.expAvgIpt[t]);
        Buf unc = Buf.of(m.expAvgUnc[t]);
        for (int j = 0; j < avg.length(); j++) {
          double ipt = Math.abs(w.get(j) * g.get(j));
          avg.set(j, cfg.beta1() * avg.get(j) + (1 - cfg.beta1()) * ipt); // stored as F32
          unc.set(j, cfg.beta2() * unc.get(j) + (1 - cfg.beta2()) * Math.abs(ipt - avg.get(j)));
        }
      }
    }
  }

  /** PEFT's reset_ipt after the final allocation. */
  public void resetImportance() {
    for (AdaLoraModule m : modules) {
      for (int t = 0; t < 3; t++) {
        m.expAvgIpt[t].assign(0);
        m.expAvgUnc[t].assign(0);
      }
    }
  }

  /**
   * Each rank's score (PEFT's _element_score and _combine_ipt): with s = exp_avg_ipt·exp_avg_unc
   * per entry, score_i = s(E_i) + mean_j s(A_ij) + mean_k s(B_ki). On the nd4j kernels computed on
   * the device and read back (one copy of r values).
   */
  public static double[] scores(AdaLoraModule m) {
    if (Kernels.current() == Kernels.ND4J) {
      return AdaLoraOps.allScores(List.of(m));
    }
    int r = m.rank();
    int in = (int) m.a.size(1);
    int out = (int) m.b.size(0);
    Buf[] ipt = {Buf.of(m.expAvgIpt[0]), Buf.of(m.expAvgIpt[1]), Buf.of(m.expAvgIpt[2])};
    Buf[] unc = {Buf.of(m.expAvgUnc[0]), Buf.of(m.expAvgUnc[1]), Buf.of(m.expAvgUnc[2])};
    double[] sc = new double[r];
    for (int i = 0; i < r; i++) {
      double sa = 0;
      for (int j = 0; j < in; j++) {
        sa += ipt[0].get(i * in + j) * unc[0].get(i * in + j);
      }
      double sb = 0;
      for (int k = 0; k < out; k++) {
        sb += ipt[2].get(k * r + i) * unc[2].get(k * r + i);
      }
      sc[i] = ipt[1].get(i) * unc[1].get(i) + sa / in + sb / out;
    }
    return sc;
  }

  /**
   * PEFT's mask_to_budget: the threshold is the (init − budget)-th smallest score over all ranks of
   * all modules; ranks scoring at most the threshold are masked (E zeroed). Nothing is masked when
   * the budget is the whole initial budget (PEFT's kthvalue would fail on k = 0). Returns the threshold.
   */
  public double maskToBudget(int budget) {
    List<double[]> all = new ArrayList<>();
    int count = 0;
    // the nd4j kernels read every module's scores back in one copy
    double[] read = Kernels.current() == Kernels.ND4J ? AdaLoraOps.allScores(modules) : null;
    for (AdaLoraModule m : modules) {
      double[] s = read == null ? scores(m) : Arrays.copyOfRange(read, count, count + m.rank());
      all.add(s);
      count += s.length;
    }
    int k = initBudget - budget;
    double threshold = Double.NEGATIVE_INFINITY;
    if (k > 0) {
      double[] flat = new double[count];
      int o = 0;
      for (double[] s : all) {
        System.arraycopy(s, 0, flat, o, s.length);
        o += s.length;
      }
      Arrays.sort(flat);
      threshold = flat[Math.min(k, count) - 1];
    }
    for (int i = 0; i < modules.size(); i++) {
      double[] s = all.get(i);
      boolean[] keep = new boolean[s.length];
      for (int j = 0; j < s.length; j++) {
        keep[j] = !(s[j] <= threshold);
      }
      modules.get(i).mask(keep);
    }
    return threshold;
  }

  /** Re-zeroes E at every decided module's masked ranks (PEFT's mask_using_rank_pattern). */
  public void applyMasks() {
    for (AdaLoraModule m : modules) {
      m.applyMask();
    }
  }

  // ---- the per-step rule ----------------------------------------------------------------------

  /**
   * PEFT's update_and_allocate(step), called after the optimizer step with that step's (0-based)
   * index and the gradients it used: before total − tfinal, update the EMAs and mask to the budget
   * when the schedule says so; at total − tfinal, the final allocation and an EMA reset; after it,
   * re-zero the final masked ranks. With decide false (a partition of a distributed round), the
   * EMAs are updated but masks are left to the driver ({@link #allocateRound}).
   */
  public void afterStep(long step, boolean decide) {
    long fin = (long) cfg.totalStep() - cfg.tfinal();
    if (step < fin) {
      updateImportance();
      AdaLoraConfig.Budget b = budget(step);
      if (decide && b.mask()) {
        maskToBudget(b.budget());
      }
    } else if (step == fin) {
      if (decide) {
        maskToBudget(budget(step).budget());
        resetImportance();
      }
    } else {
      applyMasks();
    }
  }

  /**
   * The driver's decision after a distributed round of steps [start, end), from the averaged
   * EMAs: the final allocation when the round reached total − tfinal (the EMAs stopped there, so
   * this is exactly PEFT's); else a mask to the budget of the round's last masking step, if any;
   * after the final allocation, the final masks re-applied. With one step per round this is
   * exactly {@link #afterStep}(start, true).
   */
  public void allocateRound(long start, long end) {
    long fin = (long) cfg.totalStep() - cfg.tfinal();
    if (start <= fin && fin < end) {
      maskToBudget(budget(fin).budget());
      resetImportance();
      return;
    }
    if (start > fin) {
      applyMasks();
      return;
    }
    for (long s = end - 1; s >= start; s--) {
      AdaLoraConfig.Budget b = budget(s);
      if (b.mask()) {
        maskToBudget(b.budget());
        return;
      }
    }
  }
}
