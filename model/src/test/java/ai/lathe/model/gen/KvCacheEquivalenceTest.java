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
  static int check(LlamaModel m, List<int[]> prompts, Sampling s, long seed, int prefillRows) {
    List<Step> steps = new java.util.ArrayList<>();
    Generator g = new Generator(m);
    g.prefillRows = prefillRows;
    List<Generation> out = g.generate(prompts, s, seed, null,
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
    for (Generation x : out) {
      assertEquals(s.maxNewTokens(), x.tokens().length);
    }
    return steps.size();
  }

  static void run(LlamaModel m, long seed) {
    LlamaConfig c = m.config();
    List<int[]> prompts = GenModels.prompts(c.vocabSize(), seed, 3, 9, 1, 6);
    // temperature sampling walks paths greedy would not; no stop ids so every step is compared
    Sampling s = new Sampling(7, 1.0, 0, 1.0, new int[0], List.of());
    assertEquals(4 * 7, check(m, prompts, s, seed, Generator.PREFILL_ROWS));
  }

  @ParameterizedTest
  @MethodSource("families")
  void base(String family) {
    LlamaWeights w = GenModels.weights(GenModels.family(family), 11);
    run(GenModels.model(w, null), 5);
  }

  @ParameterizedTest
  @MethodSource("families")
  void prefillInSmallChunks(String family) {
    // chunks of 4 rows: prompts split across chunks, and chunks in which no prompt ends
    LlamaWeights w = GenModels.weights(GenModels.family(family), 15);
    LlamaModel m = GenModels.model(w, null);
    List<int[]> prompts = GenModels.prompts(41, 9, 2, 11, 1, 5);
    assertEquals(4 * 5, check(m, prompts, new Sampling(5, 1.0, 0, 1.0, null, null), 3, 4));
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
    // one generator follows the model's switch between calls (its cached buffers are rebuilt)
    m.setAdaptersEnabled(true);
    Generator g = new Generator(m);
    List<int[]> prompts = GenModels.prompts(41, 2, 4, 2);
    Sampling s = Sampling.greedy(6, null);
    List<Generation> withAdapter = g.generate(prompts, s, 0);
    m.setAdaptersEnabled(false);
    List<Generation> base = g.generate(prompts, s, 0);
    List<Generation> baseFresh = new Generator(m).generate(prompts, s, 0);
    m.setAdaptersEnabled(true);
    List<Generation> again = g.generate(prompts, s, 0);
    for (int i = 0; i < prompts.size(); i++) {
      org.junit.jupiter.api.Assertions.assertArrayEquals(baseFresh.get(i).tokens(), base.get(i).tokens());
      org.junit.jupiter.api.Assertions.assertArrayEquals(withAdapter.get(i).tokens(), again.get(i).tokens());
    }
    boolean differ = false;
    for (int i = 0; i < prompts.size(); i++) {
      differ |= !java.util.Arrays.equals(withAdapter.get(i).tokens(), base.get(i).tokens());
    }
    assertTrue(differ, "the adapter changes some greedy continuation");
  }
}
