package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The whole preference path (policy forward, loss, per-token weights, engine backward) against
 * central finite differences of the loss in double precision, for every DPO loss type (ipo with
 * its length averaging) and KTO (with its in-batch KL term).
 */
class PreferenceGradientTest {
  static final LlamaConfig C = new LlamaConfig("llama", 41, 16, 2, 4, 2, 24, 1e-5, 10000, false, 64, 1, 2);

  static LlamaModel model(LlamaWeights w, long seed) {
    AdapterSet a = AdapterSet.init(C, new LoraConfig(2, 4, List.of("q_proj", "v_proj", "down_proj"), 0.0, false, false,
        Map.of(), Map.of()), seed, DataType.DOUBLE);
    Random r = new Random(seed);
    for (Param p : a.params()) {
      for (long i = 0; i < p.value().length(); i++) {
        p.value().putScalar(i, 0.3 * r.nextGaussian());
      }
    }
    return new LlamaModel(w, a, DataType.DOUBLE);
  }

  static int[] seq(Random r, int len) {
    int[] s = new int[len];
    s[0] = 1;
    for (int i = 1; i < len; i++) {
      s[i] = 2 + r.nextInt(C.vocabSize() - 2);
    }
    return s;
  }

  static final SftTrainer.Options O = new SftTrainer.Options(2, 1, 32, 1e-3, 0, 10, 0, 0, 0, 1);

  /** Loss of one micro-batch; fills the adapters' gradients when grad. */
  static <E> double loss(PreferenceTrainer<E> t, LlamaModel m, List<E> ex, boolean grad) {
    for (Param p : m.params()) {
      p.grad().assign(0);
    }
    MetricSums s = new MetricSums();
    t.micro(ex, grad, 1.0, 0, s);
    return s.mean("loss");
  }

  static <E> void check(PreferenceTrainer<E> t, LlamaModel m, List<E> ex, String what) {
    double l0 = loss(t, m, ex, true);
    List<double[]> g = new ArrayList<>();
    for (Param p : m.params()) {
      g.add(p.grad().dup().data().asDouble());
    }
    double worst = 0;
    int checked = 0;
    double h = 1e-6;
    for (int pi = 0; pi < m.params().size(); pi += 2) {
      Param p = m.params().get(pi);
      for (long i = 0; i < p.value().length(); i += 5) {
        double v = p.value().getDouble(i);
        p.value().putScalar(i, v + h);
        double lp = loss(t, m, ex, false);
        p.value().putScalar(i, v - h);
        double lm = loss(t, m, ex, false);
        p.value().putScalar(i, v);
        double fd = (lp - lm) / (2 * h);
        double an = g.get(pi)[(int) i];
        worst = Math.max(worst, Math.abs(fd - an) / Math.max(1e-4, Math.abs(fd) + Math.abs(an)));
        checked++;
      }
    }
    assertTrue(checked > 20, what);
    assertTrue(worst < 1e-5, what + ": worst relative error " + worst + " (loss " + l0 + ")");
    assertFalse(Double.isNaN(l0));
  }

  @Test
  void everyDpoLossTypeMatchesFiniteDifferencesThroughTheModel() {
    LlamaWeights w = RandomLlama.create(C, 3, 0.3, 0.2, DataType.DOUBLE);
    Random r = new Random(5);
    List<DpoTrainer.Pair> pairs = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      int[] c = seq(r, 9 + i);
      int[] j = seq(r, 7 + 2 * i);
      System.arraycopy(c, 0, j, 0, 4); // shared 4-token prompt
      pairs.add(new DpoTrainer.Pair(c, 4, j, 4, -30 + r.nextGaussian(), -28 + r.nextGaussian()));
    }
    for (String type : List.of("sigmoid", "robust", "hinge", "ipo")) {
      LlamaModel m = model(w, 7);
      double beta = type.equals("hinge") ? 0.01 : 0.5;
      check(new DpoTrainer(m, O, type, beta, type.equals("hinge") || type.equals("ipo") ? 0 : 0.2), m, pairs, type);
    }
    assertTrue(pairs.get(0).sharesPrompt());
    assertThrows(IllegalArgumentException.class, () -> new DpoTrainer(model(w, 7), O, "robust", 0.1, 0.5));
    assertThrows(IllegalArgumentException.class, () -> new DpoTrainer(model(w, 7), O, "kto", 0.1, 0));
  }

  @Test
  void ktoMatchesFiniteDifferencesWithTheKlTerm() {
    LlamaWeights w = RandomLlama.create(C, 4, 0.3, 0.2, DataType.DOUBLE);
    Random r = new Random(6);
    List<KtoTrainer.Example> ex = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      ex.add(new KtoTrainer.Example(seq(r, 8 + i), 3 + i % 2, i % 3 != 1, -25 + 2 * r.nextGaussian()));
    }
    LlamaModel ref = new LlamaModel(w, null, DataType.DOUBLE);
    LlamaModel m = model(w, 8);
    KtoTrainer t = new KtoTrainer(m, ref, O, 0.5, 1.0, 1.33);
    MetricSums s = new MetricSums();
    t.micro(ex, false, 1, 0, s);
    assertTrue(s.mean("kl") > 0, "the adapters move the policy away from the base: kl " + s.mean("kl"));
    // the KL estimate is a constant in backward (TRL detaches it): finite differences hold it fixed
    t.fixedKl = s.mean("kl");
    check(t, m, ex, "kto");
    MetricSums again = new MetricSums();
    t.micro(ex, false, 1, 0, again);
    assertEquals(s.mean("loss"), again.mean("loss"), 1e-12, "the fixed KL is the estimated one");
    KtoTrainer noRef = new KtoTrainer(m, null, O, 0.5, 1.0, 1.33);
    check(noRef, m, ex, "kto without KL");
    // the mismatched pairs: prompt of i, completion of i-1
    int[] st = new int[4];
    List<int[]> mm = KtoTrainer.mismatched(ex, st);
    assertEquals(ex.get(1).start() + ex.get(0).ids().length - ex.get(0).start(), mm.get(1).length);
    assertEquals(ex.get(0).ids()[ex.get(0).start()], mm.get(1)[ex.get(1).start()]);
  }
}
