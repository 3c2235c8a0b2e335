package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.text.ChatTemplate.Tokens;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

class SftTrainerTest {
  static final LlamaConfig C = new LlamaConfig("llama", 50, 32, 2, 4, 2, 48, 1e-5, 10000, false, 128, 1, 2);

  /** A learnable task: each completion token is a fixed function of the token before it. */
  static List<Tokens> data(int n, long seed) {
    Random r = new Random(seed);
    List<Tokens> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int len = 4 + r.nextInt(4);
      int[] ids = new int[1 + 2 * len];
      boolean[] train = new boolean[ids.length];
      ids[0] = 1;
      for (int k = 0; k < len; k++) {
        ids[1 + k] = 3 + r.nextInt(40);
        ids[1 + len + k] = (ids[len + k] * 7 + 3) % 40 + 3;
        train[1 + len + k] = true;
      }
      out.add(new Tokens(ids, train));
    }
    return out;
  }

  static List<float[]> train(long seed, int steps, List<Double> losses) {
    var w = RandomLlama.create(C, 1, 0.1, 0.0, DataType.FLOAT);
    AdapterSet a = AdapterSet.init(C, new LoraConfig(8, 16, List.of("all-linear"), 0.05, false, false, Map.of(),
        Map.of()), seed, DataType.FLOAT);
    LlamaModel m = new LlamaModel(w, a, DataType.FLOAT);
    SftTrainer t = new SftTrainer(m, new SftTrainer.Options(8, 2, 64, 1e-2, 2, steps, 0.1, 0.0, 1.0, seed));
    List<Tokens> d = data(64, 7);
    for (int s = 0; s < steps; s++) {
      List<List<Tokens>> micro = new ArrayList<>();
      for (int k = 0; k < 2; k++) {
        int off = ((2 * s + k) * 8) % 64;
        micro.add(d.subList(off, off + 8));
      }
      losses.add(t.step(micro).loss());
    }
    List<float[]> out = new ArrayList<>();
    for (Param p : a.params()) {
      out.add(p.value().data().asFloat());
    }
    return out;
  }

  @Test
  void lossFallsAndTheSameSeedGivesTheSameAdapter() {
    List<Double> l1 = new ArrayList<>();
    List<Double> l2 = new ArrayList<>();
    List<float[]> a1 = train(3, 40, l1);
    List<float[]> a2 = train(3, 40, l2);
    double first = (l1.get(0) + l1.get(1)) / 2;
    double last = (l1.get(38) + l1.get(39)) / 2;
    assertTrue(last < 0.5 * first, "loss " + first + " -> " + last);
    assertEquals(l1, l2);
    for (int i = 0; i < a1.size(); i++) {
      org.junit.jupiter.api.Assertions.assertArrayEquals(a1.get(i), a2.get(i));
    }
  }
}
