package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.TrainableWeights;
import ai.lathe.model.adapter.Param;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The step every trainer shares, against the published formulas written out here: clip by global
 * norm (torch's clip_grad_norm_: g·max/(‖g‖ + 1e-6) when ‖g‖ > max), then AdamW's first step
 * (m̂ = g, v̂ = g², so p ← p·(1 − lr·wd) − lr·g/(|g| + eps); no decay for norms), at the warmup
 * rate lr·1/(warmup + 1); a step with nothing to learn from moves nothing.
 */
class OptimizerStepTest {
  static LlamaModel full() {
    LlamaConfig c = new LlamaConfig("llama", 23, 8, 1, 2, 1, 12, 1e-5, 10000, false, 32, 1, 2);
    LlamaWeights w = RandomLlama.create(c, 3, 0.3, 0.2, DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, null, DataType.DOUBLE);
    m.setTrainable(TrainableWeights.of(w, List.of()));
    return m;
  }

  @Test
  void clipThenAdamWAtTheScheduledRate() {
    LlamaModel m = full();
    SftTrainer.Options o = new SftTrainer.Options(1, 1, 8, 0.01, 3, 10, 0.0, 0.1, 0.5, 1, 0.9, 0.999, 1e-8);
    OptimizerStep step = new OptimizerStep(m, o);
    long n = step.begin();
    assertEquals(0, n);
    Random r = new Random(2);
    List<double[]> before = new ArrayList<>();
    List<double[]> grads = new ArrayList<>();
    double ss = 0;
    for (Param p : m.params()) {
      assertEquals(0.0, p.grad().amaxNumber().doubleValue(), "begin zeroes " + p.name());
      for (long i = 0; i < p.grad().length(); i++) {
        p.grad().putScalar(i, r.nextGaussian());
      }
      before.add(p.value().dup().data().asDouble());
      double[] g = p.grad().dup().data().asDouble();
      grads.add(g);
      for (double x : g) {
        ss += x * x;
      }
    }
    OptimizerStep.Result res = step.finish(n, true);
    double norm = Math.sqrt(ss);
    double scale = 0.5 / (norm + 1e-6);
    double lr = 0.01 * 1 / 4.0;
    assertEquals(norm, res.gradNorm(), 1e-9 * norm);
    assertEquals(lr, res.lr(), 1e-15);
    for (int k = 0; k < m.params().size(); k++) {
      Param p = m.params().get(k);
      double wd = p.name().endsWith("norm.weight") ? 0 : 0.1;
      for (int i = 0; i < before.get(k).length; i++) {
        double g = grads.get(k)[i] * scale;
        double want = before.get(k)[i] * (1 - lr * wd) - lr * g / (Math.abs(g) + 1e-8);
        assertEquals(want, p.value().getDouble(i), 1e-12, p.name() + "[" + i + "]");
      }
    }
    assertEquals(1, step.optimizer().stepCount());
    assertEquals(7 * 1_000_003L + 2 * 131 + 1, new OptimizerStep(m, o.withSeed(7)).microSeed(2, 1));
  }

  @Test
  void aStepWithoutTargetsMovesNothing() {
    LlamaModel m = full();
    OptimizerStep step = new OptimizerStep(m, new SftTrainer.Options(1, 1, 8, 0.01, 0, 10, 0.0, 0.1, 1.0, 1));
    long n = step.begin();
    List<double[]> before = new ArrayList<>();
    for (Param p : m.params()) {
      p.grad().assign(0.25);
      before.add(p.value().dup().data().asDouble());
    }
    OptimizerStep.Result res = step.finish(n, false);
    assertEquals(0, step.optimizer().stepCount());
    assertEquals(Math.sqrt(0.0625 * m.params().stream().mapToLong(p -> p.value().length()).sum()), res.gradNorm(), 1e-9);
    for (int k = 0; k < m.params().size(); k++) {
      assertEquals(0.0, m.params().get(k).value().sub(org.nd4j.linalg.factory.Nd4j.createFromArray(before.get(k))
          .reshape(m.params().get(k).value().shape())).amaxNumber().doubleValue(), m.params().get(k).name());
    }
  }
}
