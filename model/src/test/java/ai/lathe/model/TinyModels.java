package ai.lathe.model;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;

/** Small configurations and random adapters for tests. */
final class TinyModels {
  private TinyModels() {}

  /** GQA (4 heads, 2 kv heads), untied head, rope_theta 500000. */
  static LlamaConfig gqaUntied() {
    return new LlamaConfig("llama", 37, 16, 2, 4, 2, 24, 1e-5, 500000.0, false, 64, 1, 2);
  }

  static AdapterSet randomAdapters(LlamaConfig c, List<String> targets, int r, double alpha,
      double dropout, long seed, DataType dt) {
    LoraConfig lc = new LoraConfig(r, alpha, targets, dropout, false, false, Map.of(), Map.of());
    AdapterSet a = AdapterSet.init(c, lc, seed, dt);
    Random rng = new Random(seed + 1);
    for (Param p : a.params()) {
      if (p.name().contains("lora_B")) {
        for (long i = 0; i < p.value().length(); i++) {
          p.value().putScalar(i, 0.3 * rng.nextGaussian());
        }
      }
    }
    return a;
  }

  static Batch randomBatch(LlamaConfig c, int bsz, int seq, long seed) {
    Random rng = new Random(seed);
    List<int[]> ids = new java.util.ArrayList<>();
    int[] start = new int[bsz];
    for (int b = 0; b < bsz; b++) {
      int len = seq - b; // ragged: padding on all but the first
      int[] s = new int[len];
      for (int i = 0; i < len; i++) {
        s[i] = rng.nextInt(c.vocabSize());
      }
      ids.add(s);
      start[b] = 1 + b % 3;
    }
    return Batch.of(ids, start, seq, 0);
  }
}
