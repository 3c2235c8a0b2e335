package ai.lathe.model.train;

import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.HostCopies;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * {@link AdamW}'s update and the global gradient norm as ND4J ops on the parameters' own arrays
 * (engine.kernels nd4j): nothing is read back but the norm itself, one scalar per step.
 */
final class AdamWOps {
  private AdamWOps() {}

  /**
   * m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  p ← p·(1 − lr·wd) − lr·(m/bc1)/(√(v/bc2) + eps).
   */
  static void update(INDArray p, INDArray g, INDArray m, INDArray v, double beta1, double beta2, double eps,
      double lr, double wd, double bc1, double bc2) {
    m.muli(beta1).addi(g.mul(1 - beta1));
    v.muli(beta2).addi(g.mul(g).muli(1 - beta2));
    INDArray denom = Transforms.sqrt(v.div(bc2), false).addi(eps);
    p.muli(1 - lr * wd).subi(m.div(denom).muli(lr / bc1));
  }

  /** √(Σ_params ‖g‖²), accumulated on the device in double; one scalar copied back. */
  static double gradNorm(List<Param> params) {
    INDArray acc = null;
    for (Param p : params) {
      INDArray n = p.grad().norm2().castTo(DataType.DOUBLE);
      INDArray sq = n.mul(n);
      acc = acc == null ? sq : acc.addi(sq);
    }
    return acc == null ? 0.0 : Math.sqrt(HostCopies.read(acc)[0]);
  }
}
