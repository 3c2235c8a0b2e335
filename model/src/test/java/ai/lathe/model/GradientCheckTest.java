package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.Param;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Every adapter gradient of a tiny GQA model with an untied head, against central finite
 * differences in double precision.
 */
class GradientCheckTest {

  static double loss(LlamaModel m, Batch b, double[] w) {
    double[] nll = m.forward(b, false, 0);
    double s = 0;
    for (int i = 0; i < nll.length; i++) {
      s += w[i] * nll[i];
    }
    return s;
  }

  static double relErr(double a, double b) {
    return Math.abs(a - b) / Math.max(1e-6, Math.abs(a) + Math.abs(b));
  }

  @Test
  void everyLoraGradientMatchesFiniteDifferences() {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 7, 0.3, 0.2, DataType.DOUBLE);
    AdapterSet a = TinyModels.randomAdapters(c, List.of("all-linear"), 2, 4.0, 0.0, 11, DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, a, DataType.DOUBLE);
    Batch b = TinyModels.randomBatch(c, 3, 9, 5);
    double[] nll = m.forward(b, false, 0);
    double[] weights = new double[nll.length];
    Random rng = new Random(3);
    for (int i = 0; i < weights.length; i++) {
      weights[i] = 0.5 + rng.nextDouble();
    }
    a.zeroGrads();
    m.forward(b, false, 0);
    m.backward(weights);
    double h = 1e-5;
    int checked = 0;
    double worst = 0;
    for (Param p : a.params()) {
      INDArray v = p.value();
      INDArray g = p.grad().dup();
      for (long i = 0; i < v.length(); i++) {
        double orig = v.getDouble(i);
        v.putScalar(i, orig + h);
        double lp = loss(m, b, weights);
        v.putScalar(i, orig - h);
        double lm = loss(m, b, weights);
        v.putScalar(i, orig);
        double fd = (lp - lm) / (2 * h);
        double an = g.getDouble(i);
        double err = relErr(fd, an);
        worst = Math.max(worst, Math.abs(fd) + Math.abs(an) < 1e-9 ? 0 : err);
        assertTrue(err < 1e-4 || Math.abs(fd - an) < 1e-9,
            p.name() + "[" + i + "]: analytic " + an + " vs finite difference " + fd);
        checked++;
      }
    }
    assertTrue(checked > 900, "checked " + checked);
    System.out.printf("checked %d adapter gradient entries, worst relative error %.2e%n", checked, worst);
  }

  static double trainLoss(LlamaModel m, Batch b, double[] w) {
    double[] nll = m.forward(b, true, 42);
    double s = 0;
    for (int i = 0; i < nll.length; i++) {
      s += w[i] * nll[i];
    }
    return s;
  }

  @Test
  void inputGradientThroughTheWholeModelAndDropoutGradients() {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 8, 0.3, 0.2, DataType.DOUBLE);
    AdapterSet a = TinyModels.randomAdapters(c, List.of("q_proj", "v_proj", "down_proj"), 3, 6.0, 0.25, 12,
        DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, a, DataType.DOUBLE);
    Batch b = TinyModels.randomBatch(c, 2, 7, 9);
    double[] weights = new double[m.forward(b, true, 42).length];
    java.util.Arrays.fill(weights, 0.7);
    a.zeroGrads();
    m.forward(b, true, 42);
    INDArray dx0 = m.backward(weights).dup();
    // dL/dE[t] = sum of the embedding-output gradient over positions holding token t
    int d = c.hiddenSize();
    double h = 1e-5;
    java.util.Set<Integer> seen = new java.util.HashSet<>();
    int checked = 0;
    for (int pos = 0; pos < b.tokens().length && seen.size() < 4; pos++) {
      int tok = b.tokens()[pos];
      if (!seen.add(tok)) {
        continue;
      }
      for (int j = 0; j < d; j++) {
        double an = 0;
        for (int q = 0; q < b.tokens().length; q++) {
          if (b.tokens()[q] == tok) {
            an += dx0.getDouble((long) q * d + j);
          }
        }
        int idx = tok * d + j;
        double o = w.embed.get(idx);
        w.embed.set(idx, o + h);
        double lp = trainLoss(m, b, weights);
        w.embed.set(idx, o - h);
        double lm = trainLoss(m, b, weights);
        w.embed.set(idx, o);
        double fd = (lp - lm) / (2 * h);
        assertTrue(relErr(fd, an) < 1e-4 || Math.abs(fd - an) < 1e-9, "embedding " + tok + "," + j + ": " + an + " vs " + fd);
        checked++;
      }
    }
    assertTrue(checked >= 4 * d);
    // with dropout on (fixed seed, so fixed masks) the adapter gradients still match
    for (Param p : a.params()) {
      INDArray v = p.value();
      INDArray g = p.grad().dup();
      for (long i = 0; i < v.length(); i += 3) {
        double orig = v.getDouble(i);
        v.putScalar(i, orig + h);
        double lp = trainLoss(m, b, weights);
        v.putScalar(i, orig - h);
        double lm = trainLoss(m, b, weights);
        v.putScalar(i, orig);
        double fd = (lp - lm) / (2 * h);
        double an = g.getDouble(i);
        assertTrue(relErr(fd, an) < 1e-4 || Math.abs(fd - an) < 1e-9, p.name() + "[" + i + "] with dropout: " + an + " vs " + fd);
      }
    }
  }

  @Test
  void gradientsOfAPackedBatch() {
    LlamaConfig c = TinyModels.gqaUntied();
    LlamaWeights w = RandomLlama.create(c, 9, 0.3, 0.2, DataType.DOUBLE);
    AdapterSet a = TinyModels.randomAdapters(c, List.of("q_proj", "k_proj", "v_proj", "o_proj"), 2, 4.0, 0.0, 13,
        DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, a, DataType.DOUBLE);
    Random rng = new Random(4);
    int[] ids = new int[10];
    boolean[] mask = new boolean[10];
    int[] pos = {0, 1, 2, 3, 0, 1, 2, 0, 1, 2};
    for (int i = 0; i < 10; i++) {
      ids[i] = rng.nextInt(c.vocabSize());
      mask[i] = pos[i] > 0;
    }
    Batch b = Batch.ofMasks(List.of(ids), List.of(mask), List.of(pos), 12, 0);
    double[] weights = new double[m.forward(b, false, 0).length];
    java.util.Arrays.fill(weights, 0.9);
    a.zeroGrads();
    m.forward(b, false, 0);
    m.backward(weights);
    double h = 1e-5;
    for (Param p : a.params()) {
      INDArray v = p.value();
      INDArray g = p.grad().dup();
      for (long i = 0; i < v.length(); i += 2) {
        double orig = v.getDouble(i);
        v.putScalar(i, orig + h);
        double lp = loss(m, b, weights);
        v.putScalar(i, orig - h);
        double lm = loss(m, b, weights);
        v.putScalar(i, orig);
        double fd = (lp - lm) / (2 * h);
        double an = g.getDouble(i);
        assertTrue(relErr(fd, an) < 1e-4 || Math.abs(fd - an) < 1e-9, p.name() + "[" + i + "] packed: " + an + " vs " + fd);
      }
    }
  }
}
