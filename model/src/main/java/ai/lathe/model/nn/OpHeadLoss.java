package ai.lathe.model.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.shape.Gather;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * {@link LmHeadLoss}'s row work as ND4J ops ({@link Kernels#ND4J}): one chunk of logits, its
 * log-sum-exp and its logit gradient never leave the device. The targets travel as flat indices
 * r·vocab + t[r] (host to device); nothing is read back here.
 *
 * <pre>
 * forward:  shift = max_v z,  z := exp(z − shift),  lse = shift + log Σ_v z,  nll = lse − z_t
 * backward: dz = w·exp(z − lse) − w·onehot(t)
 * </pre>
 */
final class OpHeadLoss {
  private OpHeadLoss() {}

  /** [rows] flat indices r·vocab + t[r0 + r] of each row's target logit in a [rows, vocab] chunk. */
  static INDArray targetIndex(int[] t, int r0, int rows, int vocab) {
    int[] idx = new int[rows];
    for (int r = 0; r < rows; r++) {
      idx[r] = r * vocab + t[r0 + r];
    }
    return Nd4j.createFromArray(idx);
  }

  /**
   * One chunk's forward: z [rows, vocab] logits (overwritten with exp(z − shift)); writes
   * shift, lse and nll (each [rows, 1], views of the caller's per-row arrays).
   */
  static void forward(INDArray z, INDArray idx, INDArray shift, INDArray lse, INDArray nll) {
    long rows = z.size(0);
    INDArray zt = Nd4j.exec(new Gather(flat(z), idx, 0))[0].reshape(rows, 1);
    INDArray max = z.max(1).reshape(rows, 1);
    shift.assign(max);
    z.subiColumnVector(max);
    Transforms.exp(z, false);
    lse.assign(Transforms.log(z.sum(1).reshape(rows, 1), false).addi(max));
    nll.assign(lse.sub(zt));
  }

  /**
   * One chunk's backward into z (dz = w·(softmax(z) − onehot(t))). reuse: z still holds
   * exp(z − shift) from forward, so softmax = z·exp(shift − lse); else z holds fresh logits.
   */
  static void backward(INDArray z, boolean reuse, INDArray idx, INDArray shift, INDArray lse, INDArray w) {
    if (reuse) {
      z.muliColumnVector(Transforms.exp(shift.sub(lse), false).muli(w));
    } else {
      z.subiColumnVector(lse);
      Transforms.exp(z, false);
      z.muliColumnVector(w);
    }
    // z[r, t[r]] −= w[r], in place on the flat chunk
    INDArray f = flat(z);
    Nd4j.exec(DynamicCustomOp.builder("scatter_sub").addInputs(f, idx, w.reshape(w.length())).addOutputs(f)
        .build());
  }

  /** Host weights [rows] as a device column in the chunk's type. */
  static INDArray column(double[] w, int r0, int rows, DataType dt) {
    double[] part = java.util.Arrays.copyOfRange(w, r0, r0 + rows);
    return Nd4j.createFromArray(part).castTo(dt).reshape(rows, 1);
  }

  /** The chunk as one row of rows·vocab elements (a view: the chunk is dense and c-ordered). */
  private static INDArray flat(INDArray z) {
    return z.reshape('c', new long[] {z.length()});
  }
}
