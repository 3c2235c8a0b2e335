package ai.lathe.model.train;

import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.Kernels;
import java.util.List;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdamW with decoupled weight decay, as torch.optim.AdamW: p ← p·(1 − lr·wd), then
 * p ← p − lr·m̂/(√v̂ + eps) with bias-corrected moments.
 */
public final class AdamW {
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final double weightDecay;
  private final List<Param> params;
  private final Buf[] m;
  private final Buf[] v;
  private long step;

  public AdamW(List<Param> params, double beta1, double beta2, double eps, double weightDecay) {
    this.params = params;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.m = new Buf[params.size()];
    this.v = new Buf[params.size()];
    for (int i = 0; i < params.size(); i++) {
      m[i] = Buf.of(Nd4j.zeros(params.get(i).value().dataType(), params.get(i).value().shape()));
      v[i] = Buf.of(Nd4j.zeros(params.get(i).value().dataType(), params.get(i).value().shape()));
    }
  }

  public long stepCount() {
    return step;
  }

  /** One update with learning rate lr from the params' current gradients. */
  public void step(double lr) {
    step++;
    double bc1 = 1 - Math.pow(beta1, step);
    double bc2 = 1 - Math.pow(beta2, step);
    for (int i = 0; i < params.size(); i++) {
      double wd = decays(params.get(i).name()) ? weightDecay : 0.0;
      if (Kernels.current() == Kernels.ND4J) {
        AdamWOps.update(params.get(i).value(), params.get(i).grad(), m[i].arr, v[i].arr, beta1, beta2, eps, lr, wd,
            bc1, bc2);
        continue;
      }
      Buf p = Buf.of(params.get(i).value());
      Buf g = Buf.of(params.get(i).grad());
      Buf mi = m[i];
      Buf vi = v[i];
      for (int j = 0, n = p.length(); j < n; j++) {
        double gj = g.get(j);
        double mj = beta1 * mi.get(j) + (1 - beta1) * gj;
        double vj = beta2 * vi.get(j) + (1 - beta2) * gj * gj;
        mi.set(j, mj);
        vi.set(j, vj);
        double pj = p.get(j) * (1 - lr * wd);
        p.set(j, pj - lr * (mj / bc1) / (Math.sqrt(vj / bc2) + eps));
      }
    }
  }

  /**
   * Whether weight decay applies to a tensor: not to biases and norm weights (as transformers'
   * Trainer, which excludes "bias" and LayerNorm parameters); to everything else, adapters included.
   */
  static boolean decays(String name) {
    return !(name.endsWith(".bias") || name.endsWith("norm.weight") || name.endsWith("layernorm.weight"));
  }

  /** The moments as flat float arrays (m then v per parameter), for checkpoints and averaging. */
  public float[][] state() {
    float[][] s = new float[2 * params.size()][];
    for (int i = 0; i < params.size(); i++) {
      s[2 * i] = m[i].arr.castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT).data().asFloat();
      s[2 * i + 1] = v[i].arr.castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT).data().asFloat();
    }
    return s;
  }

  public void loadState(float[][] s, long stepCount) {
    if (s.length != 2 * params.size()) {
      throw new IllegalArgumentException("optimizer state has " + s.length / 2 + " tensors, expected "
          + params.size());
    }
    for (int i = 0; i < params.size(); i++) {
      for (int j = 0; j < s[2 * i].length; j++) {
        m[i].set(j, s[2 * i][j]);
        v[i].set(j, s[2 * i + 1][j]);
      }
    }
    this.step = stepCount;
  }

  /** Global L2 norm of all gradients. */
  public static double gradNorm(List<Param> params) {
    if (Kernels.current() == Kernels.ND4J) {
      return AdamWOps.gradNorm(params);
    }
    double ss = 0;
    for (Param p : params) {
      Buf g = Buf.of(p.grad());
      for (int j = 0, n = g.length(); j < n; j++) {
        double x = g.get(j);
        ss += x * x;
      }
    }
    return Math.sqrt(ss);
  }

  /** Scales gradients so their global norm is at most maxNorm (torch's clip_grad_norm_); returns the norm before. */
  public static double clipGradNorm(List<Param> params, double maxNorm) {
    double norm = gradNorm(params);
    if (maxNorm > 0 && norm > maxNorm) {
      double s = maxNorm / (norm + 1e-6);
      for (Param p : params) {
        p.grad().muli(s);
      }
    }
    return norm;
  }
}
