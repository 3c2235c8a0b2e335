package ai.lathe.model.gen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterSet;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Cached decoding equals recomputing the whole prefix: at every step of every prompt, the logits the
 * generator draws from match LlamaModel's full forward over prompt + tokens so far (in double).
 * Prompts of different lengths share a batch (positions per sequence), mistral's window (5) is
 * shorter than prompt + generation, and adapters (LoRA, DoRA) and NF4 bases take their own paths.
 */
class KvCacheEquivalenceTest {
  static final double TOL = 1e-5;

  static List<String> families() {
    return GenModels.FAMILIES;
  }

  record Step(int prompt, int step, double[] z) {}

  /** Generates, then checks every step's logits against the full forward; returns the rows compared. */
  static int check(LlamaModel m, List<int[]> prompts, Sampling s, long seed) {
    List<Step> steps = new java.util.ArrayList<>();
    List<Generation> out = new Generator(m).generate(prompts, s, seed, null,
        (i, step, z) -> steps.add(new Step(i, step, z)));
    for (Step st : steps) {
      // the reference: the full forward over the prompt and the tokens drawn before this step
      int[] p = prompts.get(st.prompt());
      int[] prefix = java.util.Arrays.copyOf(p, p.length + st.step());
      System.arraycopy(out.get(st.prompt()).tokens(), 0, prefix, p.length, st.step());
      double[] ref = m.lastLogits(prefix);
      assertEquals(ref.length, st.z().length);
      for (int v = 0; v < ref.length; v++) {
        assertEquals(ref[v], st.z()[v], TOL, "prompt " + st.prompt() + " step " + st.step() + " token " + v);
      }
    }
    for (Generation g : out) {
      assertEquals(s.maxNewTokens(), g.tokens().length);
    }
    return steps.size();
  }

  static void run(LlamaModel m, long seed) {
    LlamaConfig c = m.config();
    List<int[]> prompts = GenModels.prompts(c.vocabSize(), seed, 3, 9, 1, 6);
    // temperature sampling walks paths greedy would not; no stop ids so every step is compared
    Sampling s = new Sampling(7, 1.0, 0, 1.0, new int[0], List.of());
    assertEquals(4 * 7, check(m, prompts, s, seed));
  }

  @ParameterizedTest
  @MethodSource("families")
  void base(String family) {
    LlamaWeights w = GenModels.weights(GenModels.family(family), 11);
    run(GenModels.model(w, null), 5);
  }

  @ParameterizedTest
  @MethodSource("families")
  void lora(String family) {
    LlamaWeights w = GenModels.weights(GenModels.family(family), 12);
    AdapterSet a = GenModels.adapters(w, false, 3);
    LlamaModel m = GenModels.model(w, a);
    run(m, 6);
    // and the same model with its adapters switched off is the base
    m.setAdaptersEnabled(false);
    run(m, 6);
  }

  @ParameterizedTest
  @MethodSource("families")
  void dora(String family) {
    LlamaWeights w = GenModels.weights(GenModels.family(family), 13);
    run(GenModels.model(w, GenModels.adapters(w, true, 4)), 7);
  }

  @ParameterizedTest
  @MethodSource("families")
  void nf4BaseWithLora(String family) {
    LlamaWeights w = GenModels.weights(GenModels.family(family), 14).quantizeNf4(true);
    run(GenModels.model(w, null), 8);
    run(GenModels.model(w, GenModels.adapters(w, false, 5)), 8);
  }

  @org.junit.jupiter.api.Test
  void adaptersChangeTheOutput() {
    // guards against a test that passes because adapters are ignored on both sides
    LlamaWeights w = GenModels.weights(GenModels.family("llama"), 12);
    LlamaModel m = GenModels.model(w, GenModels.adapters(w, false, 3));
    int[] p = GenModels.prompts(41, 1, 5).get(0);
    double[] on = m.lastLogits(p);
    m.setAdaptersEnabled(false);
    double[] off = m.lastLogits(p);
    double diff = 0;
    for (int i = 0; i < on.length; i++) {
      diff = Math.max(diff, Math.abs(on[i] - off[i]));
    }
    assertTrue(diff > 1e-2, "adapter changes logits by " + diff);
  }
}
