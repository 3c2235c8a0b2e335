package ai.lathe.model.gen;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaModel;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Seeded sampling, the filters against their definitions, stop ids and strings, and bad input. */
class SamplingTest {
  static final LlamaModel M = GenModels.model(GenModels.weights(GenModels.family("llama"), 21), null);
  static final List<int[]> PROMPTS = GenModels.prompts(41, 2, 4, 7, 2);

  static List<int[]> tokens(List<Generation> g) {
    List<int[]> out = new ArrayList<>();
    for (Generation x : g) {
      out.add(x.tokens());
    }
    return out;
  }

  static void assertSame(List<Generation> a, List<Generation> b) {
    assertEquals(a.size(), b.size());
    for (int i = 0; i < a.size(); i++) {
      assertArrayEquals(a.get(i).tokens(), b.get(i).tokens(), "prompt " + i);
      assertEquals(a.get(i).finishReason(), b.get(i).finishReason());
    }
  }

  static Sampling sample(double t, int k, double p) {
    return new Sampling(10, t, k, p, new int[0], List.of());
  }

  @Test
  void sameSeedSameSamplesDifferentSeedsDiffer() {
    Generator g = new Generator(M);
    Sampling s = sample(1.5, 0, 1.0);
    List<Generation> a = g.generate(PROMPTS, s, 42);
    assertSame(a, g.generate(PROMPTS, s, 42));
    List<Generation> b = g.generate(PROMPTS, s, 43);
    boolean differ = false;
    for (int i = 0; i < a.size(); i++) {
      differ |= !java.util.Arrays.equals(a.get(i).tokens(), b.get(i).tokens());
    }
    assertTrue(differ, "seeds 42 and 43 gave the same samples");
    // a prompt's sample does not depend on the rest of its batch
    List<Generation> alone = g.generate(List.of(PROMPTS.get(0)), s, 42);
    assertArrayEquals(a.get(0).tokens(), alone.get(0).tokens());
  }

  @Test
  void topKOneAndTinyTopPAreGreedy() {
    Generator g = new Generator(M);
    List<Generation> greedy = g.generate(PROMPTS, Sampling.greedy(10, new int[0]), 0);
    assertSame(greedy, g.generate(PROMPTS, sample(2.0, 1, 1.0), 7));
    assertSame(greedy, g.generate(PROMPTS, sample(2.0, 0, 1e-9), 7));
    // and hot sampling without filters does not (so the two checks above can fail)
    List<Generation> hot = g.generate(PROMPTS, sample(2.0, 0, 1.0), 7);
    boolean differ = false;
    for (int i = 0; i < hot.size(); i++) {
      differ |= !java.util.Arrays.equals(greedy.get(i).tokens(), hot.get(i).tokens());
    }
    assertTrue(differ);
  }

  @Test
  void filtersMatchTheirDefinitionsInDistribution() {
    // logits whose softmax is (0.5, 0.25, 0.15, 0.1): top-k 2 keeps {0, 1}; top-p 0.7 keeps {0, 1}
    // (mass before token 2 is 0.75 >= 0.7); top-p 0.8 keeps {0, 1, 2}
    double[] p = {0.5, 0.25, 0.15, 0.1};
    double[][] expect = {
        {0.5 / 0.75, 0.25 / 0.75, 0, 0}, {0.5 / 0.75, 0.25 / 0.75, 0, 0}, {0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0}};
    int[] ks = {2, 0, 0};
    double[] ps = {1.0, 0.7, 0.8};
    for (int c = 0; c < 3; c++) {
      int[] count = new int[4];
      SplittableRandom rng = new SplittableRandom(c);
      int n = 200_000;
      for (int i = 0; i < n; i++) {
        double[] x = new double[4];
        for (int v = 0; v < 4; v++) {
          x[v] = Math.log(p[v]);
        }
        count[Sampler.draw(x, ks[c], ps[c], rng.nextDouble())]++;
      }
      for (int v = 0; v < 4; v++) {
        assertEquals(expect[c][v], count[v] / (double) n, 0.005, "case " + c + " token " + v);
      }
    }
  }

  @Test
  void stopIdsAndStopStringsEndASequence() {
    Generator g = new Generator(M);
    List<Generation> free = g.generate(PROMPTS, Sampling.greedy(10, new int[0]), 0);
    int[] first = free.get(1).tokens();
    int stop = first[3];
    List<Generation> stopped = g.generate(PROMPTS, Sampling.greedy(10, new int[] {stop}), 0);
    Generation s1 = stopped.get(1);
    int at = 0;
    while (first[at] != stop) {
      at++;
    }
    // the stop id is kept, nothing after it
    assertArrayEquals(java.util.Arrays.copyOf(first, at + 1), s1.tokens());
    assertEquals(Generation.STOP, s1.finishReason());
    assertEquals(Generation.LENGTH, free.get(1).finishReason());
    // a stop string over the decoded text: tokens spelled as "<id>", stop at "<" + stop + ">"
    java.util.function.Function<int[], String> decode = ids -> {
      StringBuilder b = new StringBuilder();
      for (int id : ids) {
        b.append('<').append(id).append('>');
      }
      return b.toString();
    };
    Sampling ss = new Sampling(10, 0, 0, 1, new int[0], List.of("<" + stop + ">"));
    assertArrayEquals(s1.tokens(), g.generate(PROMPTS, ss, 0, decode).get(1).tokens());
    assertThrows(IllegalArgumentException.class, () -> g.generate(PROMPTS, ss, 0));
  }

  @Test
  void generationStopsAtMaxPositionEmbeddings() {
    int maxPos = M.config().maxPositionEmbeddings(); // 64
    int[] p = GenModels.prompts(41, 3, maxPos - 2).get(0);
    Generation g = new Generator(M).generate(List.of(p), Sampling.greedy(10, new int[0]), 0).get(0);
    // new tokens at positions maxPos−2 (fed: prompt end), maxPos−1 → three tokens can be drawn
    assertEquals(3, g.tokens().length);
    assertEquals(Generation.LENGTH, g.finishReason());
  }

  @Test
  void badInputIsOneClearError() {
    Generator g = new Generator(M);
    var empty = assertThrows(IllegalArgumentException.class,
        () -> g.generate(List.of(new int[] {1}, new int[0]), Sampling.greedy(3, null), 0));
    assertEquals("prompt 1 is empty: generation needs at least one token", empty.getMessage());
    int[] tooLong = new int[M.config().maxPositionEmbeddings() + 1];
    var longErr = assertThrows(IllegalArgumentException.class,
        () -> g.generate(List.of(tooLong), Sampling.greedy(3, null), 0));
    assertEquals("prompt 0 has 65 tokens, more than the model's max_position_embeddings 64", longErr.getMessage());
    var vocabErr = assertThrows(IllegalArgumentException.class,
        () -> g.generate(List.of(new int[] {1, 99}), Sampling.greedy(3, null), 0));
    assertTrue(vocabErr.getMessage().contains("prompt 0 token 1 = 99"), vocabErr.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Sampling.greedy(0, null));
    assertThrows(IllegalArgumentException.class, () -> new Sampling(3, -1, 0, 1, null, null));
    assertThrows(IllegalArgumentException.class, () -> new Sampling(3, 1, 0, 0, null, null));
    assertNotEquals(null, Sampling.greedy(1, null).stopIds());
  }
}
