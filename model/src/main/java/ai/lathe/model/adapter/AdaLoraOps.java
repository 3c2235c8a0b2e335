package ai.lathe.model.adapter;

import ai.lathe.model.nn.HostCopies;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * {@link RankAllocator}'s in-step rules as ND4J ops on the modules' own arrays (engine.kernels
 * nd4j): the orthogonality gradient, the importance EMAs and each rank's score. Nothing is read
 * back inside a step; a masking step reads the scores of all ranks back once (the budget's
 * threshold is a host decision, like PEFT's kthvalue of a tiny vector), and the mask travels
 * host to device.
 */
final class AdaLoraOps {
  private AdaLoraOps() {}

  /**
   * ‖P·Pᵀ − I‖_F for P = x (or xᵀ when columns) in double, adding coef·2·M·P/‖M‖ (or 2·P·M/‖M‖)
   * into grad; the norm stays on the device (a 0-d array). ‖M‖ = 0 makes M = 0 and so no gradient.
   */
  static INDArray orthTerm(INDArray x, INDArray grad, boolean columns, double coef) {
    INDArray p = x.castTo(DataType.DOUBLE);
    INDArray cov = columns ? p.transpose().mmul(p) : p.mmul(p.transpose());
    INDArray mm = cov.subi(Nd4j.eye(cov.size(0)).castTo(DataType.DOUBLE));
    INDArray norm = mm.norm2();
    if (coef != 0) {
      INDArray g = columns ? p.mmul(mm) : mm.mmul(p);
      // factor = 2·coef/max(‖M‖, tiny), broadcast as a 0-d array (no read back)
      INDArray factor = Transforms.pow(Transforms.max(norm, Double.MIN_NORMAL, true), -1, false).muli(2 * coef);
      Nd4j.exec(DynamicCustomOp.builder("multiply").addInputs(g, factor).addOutputs(g).build());
      grad.addi(g.castTo(grad.dataType()));
    }
    return norm;
  }

  /**
   * ipt = |w·g|, avg ← β1·avg + (1−β1)·ipt, unc ← β2·unc + (1−β2)·|ipt − avg| (the new avg), in F32
   * over the entries of w and g in c order.
   */
  static void updateImportance(INDArray w, INDArray g, INDArray avg, INDArray unc, double beta1, double beta2) {
    INDArray ipt = Transforms.abs(w.mul(g), false).reshape('c', new long[] {avg.length()}).castTo(DataType.FLOAT);
    avg.muli(beta1).addi(ipt.mul(1 - beta1));
    unc.muli(beta2).addi(Transforms.abs(ipt.subi(avg), false).muli(1 - beta2));
  }

  /**
   * Each rank's score on the device, [r] in double: s = ipt·unc per entry, score_i = s(E_i) +
   * mean_j s(A_ij) + mean_k s(B_ki).
   */
  static INDArray scores(AdaLoraModule m) {
    int r = m.rank();
    long in = m.a.size(1);
    long out = m.b.size(0);
    INDArray sa = entryScores(m, 0).reshape('c', new long[] {r, in}).mean(1);
    INDArray se = entryScores(m, 1);
    INDArray sb = entryScores(m, 2).reshape('c', new long[] {out, r}).mean(0);
    return se.addi(sa).addi(sb);
  }

  private static INDArray entryScores(AdaLoraModule m, int t) {
    return m.expAvgIpt[t].castTo(DataType.DOUBLE).muli(m.expAvgUnc[t].castTo(DataType.DOUBLE));
  }

  /** Every module's scores, read back in one copy (a masking step's only read). */
  static double[] allScores(java.util.List<AdaLoraModule> modules) {
    INDArray[] each = new INDArray[modules.size()];
    for (int i = 0; i < each.length; i++) {
      each[i] = scores(modules.get(i));
    }
    return HostCopies.read(each.length == 1 ? each[0] : Nd4j.concat(0, each));
  }
}
