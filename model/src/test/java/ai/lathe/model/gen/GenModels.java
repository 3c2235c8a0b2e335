package ai.lathe.model.gen;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.RopeScaling;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;

/** Tiny random models of every family and random adapters, for the generation tests. */
final class GenModels {
  private GenModels() {}

  /** Families by name; mistral's window (5) is shorter than prompt + generation in the tests. */
  static LlamaConfig family(String name) {
    return switch (name) {
      case "llama" -> LlamaConfig.family("llama", 41, 16, 2, 4, 2, 24, 0, 10000.0, false, 64, 0);
      case "llama3-tied" -> new LlamaConfig("llama", 41, 16, 2, 4, 2, 24, 1e-5, 500000.0, true, 64, 1, 2, 8,
          new RopeScaling(8.0, 1.0, 4.0, 8192), 0);
      case "qwen2" -> LlamaConfig.family("qwen2", 41, 16, 2, 4, 2, 24, 0, 1000000.0, false, 64, 0);
      case "qwen3" -> LlamaConfig.family("qwen3", 41, 16, 2, 4, 2, 24, 6, 1000000.0, false, 64, 0);
      case "mistral" -> LlamaConfig.family("mistral", 41, 16, 2, 4, 1, 24, 0, 10000.0, false, 64, 5);
      default -> throw new IllegalArgumentException(name);
    };
  }

  static final List<String> FAMILIES = List.of("llama", "llama3-tied", "qwen2", "qwen3", "mistral");

  static LlamaWeights weights(LlamaConfig c, long seed) {
    return RandomLlama.create(c, seed, 0.3, 0.2, DataType.DOUBLE);
  }

  /** LoRA or DoRA on every linear module, moved away from initialisation (B, and DoRA's m, random). */
  static AdapterSet adapters(LlamaWeights w, boolean dora, long seed) {
    LoraConfig lc = new LoraConfig(2, 4.0, List.of("all-linear"), 0.0, false, dora, Map.of(), Map.of());
    AdapterSet a = AdapterSet.init(w, lc, seed, DataType.DOUBLE);
    Random rng = new Random(seed + 1);
    for (Param p : a.params()) {
      for (long i = 0; i < p.value().length(); i++) {
        double v = p.value().getDouble(i);
        if (p.name().contains("lora_B")) {
          p.value().putScalar(i, 0.3 * rng.nextGaussian());
        } else if (p.name().endsWith("magnitude_vector")) {
          p.value().putScalar(i, v * (1 + 0.3 * rng.nextGaussian()));
        }
      }
    }
    return a;
  }

  static List<int[]> prompts(int vocab, long seed, int... lengths) {
    Random rng = new Random(seed);
    List<int[]> out = new ArrayList<>();
    for (int len : lengths) {
      int[] p = new int[len];
      for (int i = 0; i < len; i++) {
        p[i] = rng.nextInt(vocab);
      }
      out.add(p);
    }
    return out;
  }

  static LlamaModel model(LlamaWeights w, AdapterSet a) {
    return new LlamaModel(w, a, DataType.DOUBLE);
  }
}
