package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

class DpoTrainerTest {
  /** Pairs where chosen completions follow a fixed rule and rejected ones do not. */
  static List<DpoTrainer.Pair> pairs(int n, long seed, LlamaModel ref, SftTrainer.Options o) {
    Random r = new Random(seed);
    List<DpoTrainer.Pair> raw = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] c = new int[8];
      int[] j = new int[8];
      c[0] = j[0] = 1;
      for (int t = 1; t < 4; t++) {
        c[t] = j[t] = 3 + r.nextInt(40);
      }
      for (int t = 4; t < 8; t++) {
        c[t] = (c[t - 1] * 7 + 3) % 40 + 3;
        j[t] = 3 + r.nextInt(40);
      }
      raw.add(new DpoTrainer.Pair(c, 4, j, 4, 0, 0));
    }
    // reference log-probs computed once with the frozen base (adapters disabled)
    ref.setAdaptersEnabled(false);
    DpoTrainer scorer = new DpoTrainer(ref, o, "sigmoid", 0.1, 0);
    double[][] lp = scorer.logProbs(raw);
    ref.setAdaptersEnabled(true);
    List<DpoTrainer.Pair> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      DpoTrainer.Pair p = raw.get(i);
      out.add(new DpoTrainer.Pair(p.chosen(), p.chosenStart(), p.rejected(), p.rejectedStart(), lp[0][i], lp[1][i]));
    }
    return out;
  }

  @Test
  void preferenceAccuracyRisesOnHeldOutPairs() {
    LlamaConfig c = new LlamaConfig("llama", 50, 32, 2, 4, 2, 48, 1e-5, 10000, false, 64, 1, 2);
    var w = RandomLlama.create(c, 1, 0.1, 0.0, DataType.FLOAT);
    AdapterSet a = AdapterSet.init(c, new LoraConfig(8, 16, List.of("all-linear"), 0.0, false, false, Map.of(),
        Map.of()), 3, DataType.FLOAT);
    LlamaModel m = new LlamaModel(w, a, DataType.FLOAT);
    SftTrainer.Options o = new SftTrainer.Options(8, 1, 16, 5e-3, 2, 60, 0.1, 0.0, 1.0, 5);
    List<DpoTrainer.Pair> train = pairs(64, 1, m, o);
    List<DpoTrainer.Pair> held = pairs(32, 2, m, o);
    DpoTrainer t = new DpoTrainer(m, o, "sigmoid", 0.5, 0.0);
    double first = t.step(List.of(train.subList(0, 8))).metrics().mean("loss");
    double heldBefore = t.evaluate(held, 8).mean("rewards/accuracies");
    for (int s = 1; s < 60; s++) {
      int off = (s * 8) % 64;
      t.step(List.of(train.subList(off, off + 4), train.subList(off + 4, off + 8)));
    }
    double[][] lp = t.logProbs(held);
    int right = 0;
    for (int i = 0; i < held.size(); i++) {
      double rc = lp[0][i] - held.get(i).refChosen();
      double rr = lp[1][i] - held.get(i).refRejected();
      right += rc > rr ? 1 : 0;
    }
    double acc = right / (double) held.size();
    assertTrue(first > 0.6, "starts near log 2: " + first);
    assertTrue(acc > 0.8, "held-out rewards/accuracies " + acc);
    assertEquals(acc, t.evaluate(held, 8).mean("rewards/accuracies"), 1e-12);
    assertTrue(heldBefore < 0.7, "before training " + heldBefore);
  }
}
