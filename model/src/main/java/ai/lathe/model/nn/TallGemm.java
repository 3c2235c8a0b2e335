package ai.lathe.model.nn;

import java.util.HashMap;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The input gradient of a tall frozen weight, dx = beta·dx + dy·W with W [out, in] and out much
 * larger than in (the LM head: vocabulary x hidden). ND4J's matmul (oneDNN build) runs the plain
 * row-major product dy·W with its long inner dimension at about half the rate of the same product
 * written transposed, dxᵀ = Wᵀ·dyᵀ, into a [in, rows] scratch (measured on this machine, per
 * CPU-second: 51 against 89 GFLOP/s for [256, 32768]·[32768, 2048]); the transposed result is
 * added back (rows·in elements, negligible next to the product's rows·in·out).
 */
public final class TallGemm {
  /** W counts as tall from this ratio out/in (the head; MLP projections, out = 4·in, gained nothing measurable). */
  public static final int MIN_RATIO = 8;

  private static final int MAX_SCRATCH = 8;
  private static final ThreadLocal<Map<String, INDArray>> SCRATCH = ThreadLocal.withInitial(HashMap::new);

  private TallGemm() {}

  /** Whether a weight [out, in] takes the transposed product. */
  public static boolean tall(long out, long in) {
    return out >= MIN_RATIO * in;
  }

  /** dx = beta·dx + dy·W, dy [rows, out], W [out, in], dx [rows, in]; transposed when W is tall. */
  public static void backwardInput(INDArray dy, INDArray w, INDArray dx, double beta) {
    long out = w.size(0);
    long in = w.size(1);
    if (!tall(out, in)) {
      Matmul.gemm(dy, w, dx, false, false, 1.0, beta);
      return;
    }
    long rows = dy.size(0);
    INDArray t = scratch(dx, in, rows);
    Nd4j.gemm(w, dy, t, true, true, 1.0, 0.0); // dxᵀ = Wᵀ·dyᵀ
    if (beta == 0.0) {
      dx.assign(t.transpose());
    } else {
      dx.muli(beta).addi(t.transpose());
    }
  }

  /** A per-thread [in, rows] buffer in dx's type (a few shapes per thread: the head's chunk sizes). */
  private static INDArray scratch(INDArray like, long in, long rows) {
    Map<String, INDArray> m = SCRATCH.get();
    String key = like.dataType() + ":" + in + "x" + rows;
    INDArray a = m.get(key);
    if (a == null) {
      if (m.size() >= MAX_SCRATCH) {
        m.clear(); // shapes change (padded preference batches): keep the newest few only
      }
      a = HugePages.zeros(like.dataType(), in, rows);
      m.put(key, a);
    }
    return a;
  }
}
