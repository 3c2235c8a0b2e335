package ai.lathe.merge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The fast merge path (radix select, in-place buffers, module threads) against the naive one. */
class FastMergeEquivalenceTest {

  /** The trim by its definition: sort indices by |x| descending, ties by index ascending, keep k. */
  static float[] naiveTrim(float[] x, double density, double w) {
    int n = x.length;
    int k = density >= 1 ? n : (int) (density * n);
    Integer[] idx = new Integer[n];
    for (int i = 0; i < n; i++) {
      idx[i] = i;
    }
    Arrays.sort(idx, Comparator.<Integer>comparingDouble(i -> -Math.abs(x[i])).thenComparingInt(i -> i));
    float[] out = new float[n];
    for (int r = 0; r < k; r++) {
      out[idx[r]] = (float) (x[idx[r]] * w);
    }
    return out;
  }

  /** Values from a small set (many ties, signed zeros, subnormals) or continuous. */
  static float[] data(Random r, int n, boolean ties) {
    float[] pool = {0f, -0f, 1f, -1f, 0.5f, -0.5f, 2f, Float.MIN_VALUE, -Float.MIN_VALUE, 3e-39f, 1e30f, -1e30f};
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = ties ? pool[r.nextInt(pool.length)] : (float) r.nextGaussian() * (r.nextInt(4) == 0 ? 1e-3f : 1f);
    }
    return x;
  }

  @Test
  void radixSelectTrimEqualsTheSortBasedDefinitionIncludingTies() {
    Random r = new Random(7);
    int[] hist = new int[Sparsify.HIST];
    for (int trial = 0; trial < 200; trial++) {
      int n = 1 + r.nextInt(trial < 100 ? 50 : 5000);
      boolean ties = trial % 2 == 0;
      float[] x = data(r, n, ties);
      double d = switch (trial % 5) {
        case 0 -> 1.0;
        case 1 -> 0.5;
        case 2 -> r.nextDouble();
        case 3 -> 1e-4;
        default -> 0.999;
      };
      double w = trial % 3 == 0 ? -0.7 : 1.3;
      float[] expect = naiveTrim(x, d, w);
      // the buffer is longer than the module: only [0, n) is touched
      float[] buf = Arrays.copyOf(x, n + 3);
      buf[n] = 42f;
      Sparsify.magnitudeInPlace(buf, n, d, w, hist);
      assertArrayEquals(expect, Arrays.copyOf(buf, n), "trial " + trial + " n " + n + " density " + d);
      assertEquals(42f, buf[n]);
      // and the existing quickselect trim keeps the same entries
      float[] old = Sparsify.magnitude(x, d);
      for (int i = 0; i < n; i++) {
        assertEquals((float) (old[i] * w), expect[i], 0f, "trial " + trial + " [" + i + "]");
      }
    }
  }

  @Test
  void inPlaceMergeEqualsTheReferenceMergeExactly() {
    Random r = new Random(3);
    int[] hist = new int[Sparsify.HIST];
    for (MergeMethod m : MergeMethod.values()) {
      for (String sign : List.of("total", "frequency")) {
        for (boolean normalize : List.of(true, false)) {
          int n = 3000;
          int k = 4;
          List<float[]> deltas = new ArrayList<>();
          float[][] bufs = new float[k][];
          for (int i = 0; i < k; i++) {
            deltas.add(data(r, n, i % 2 == 0));
            bufs[i] = Arrays.copyOf(deltas.get(i), n + 5);
          }
          double[] w = {1.0, 0.5, -0.25, 2.0};
          double[] d = {0.5, 0.3, 1.0, 0.05};
          MergeMethod.Params p = new MergeMethod.Params(normalize, sign, 0.9, 11);
          float[] expect = m.merge(deltas, w, d, p, 37);
          float[] got = new float[n];
          m.mergeInto(bufs, n, w, d, p, 37, got, hist);
          assertArrayEquals(expect, got, m.id + " " + sign + " normalize " + normalize);
        }
      }
    }
  }

  /** A DoRA adapter on the test base (its update needs the base weight). */
  static void doraAdapter(Path dir) throws Exception {
    var base = ai.lathe.model.io.HfCheckpoint.load(dir.resolveSibling("base"), org.nd4j.linalg.api.buffer.DataType.FLOAT);
    var lc = new ai.lathe.model.adapter.LoraConfig(3, 6, List.of("q_proj", "o_proj", "up_proj"), 0, false, true,
        java.util.Map.of("up_proj", 2), java.util.Map.of());
    var d = ai.lathe.model.adapter.AdapterSet.init(base, lc, 4, org.nd4j.linalg.api.buffer.DataType.FLOAT);
    Random r = new Random(9);
    for (var p : d.params()) {
      for (long i = 0; i < p.value().length(); i++) {
        double v = p.value().getDouble(i);
        p.value().putScalar(i, p.name().endsWith("magnitude_vector") ? v * (1 + 0.3 * r.nextGaussian())
            : 0.3 * r.nextGaussian());
      }
    }
    ai.lathe.model.io.PeftAdapter.write(dir, d, "base", null);
  }

  @Test
  void threadedWorkspaceMergeReproducesTheReferenceAdapter(@TempDir Path tmp) throws Exception {
    new AdapterMergerTest().setUp(tmp); // two adapters of different ranks, targets and scalings
    doraAdapter(tmp.resolve("dora"));
    for (String method : List.of("ties", "dare_ties", "linear", "task_arithmetic")) {
      ai.lathe.model.Config c = AdapterMergerTest.cfg(tmp, method, "adapter", 3, "parameters.density=0.5");
      c.set("adapters=[{path: " + tmp.resolve("en") + ", weight: 1.0}, {path: " + tmp.resolve("de")
          + ", weight: 0.5, density: 0.3}, {path: " + tmp.resolve("dora") + ", weight: 0.8}]");
      MergeConfig mc = MergeConfig.from(c);
      List<AdapterMerger.Source> sources = AdapterMerger.open(mc, AdapterMergerTest.C);
      try {
        List<int[]> all = AdapterMerger.allModules(AdapterMergerTest.C);
        List<AdapterMerger.ModuleFactors> ref = AdapterMerger.factorModulesReference(mc, AdapterMergerTest.C, sources, all);
        for (String threads : List.of("1", "3")) {
          System.setProperty("lathe.merge.threads", threads);
          List<AdapterMerger.ModuleFactors> fast = AdapterMerger.factorModules(mc, AdapterMergerTest.C, sources, all);
          assertEquals(ref.size(), fast.size());
          for (int i = 0; i < ref.size(); i++) {
            String where = method + " threads " + threads + " " + ref.get(i).layer() + "." + ref.get(i).module();
            assertEquals(ref.get(i).layer(), fast.get(i).layer(), where);
            assertEquals(ref.get(i).module(), fast.get(i).module(), where);
            assertArrayEquals(ref.get(i).a(), fast.get(i).a(), where);
            assertArrayEquals(ref.get(i).b(), fast.get(i).b(), where);
            assertEquals(ref.get(i).error(), fast.get(i).error(), 0.0, where);
          }
        }
      } finally {
        System.clearProperty("lathe.merge.threads");
        AdapterMerger.close(sources);
      }
    }
  }

  /**
   * Merging into a sharded base: the output has the input's files with the same tensors each, and
   * every projection is exactly base + the reference path's merged update; other tensors copy.
   */
  @Test
  void mergeIntoAShardedBaseStreamsLikeTheInputAndMatchesTheReference(@TempDir Path tmp) throws Exception {
    new AdapterMergerTest().setUp(tmp);
    var c = AdapterMergerTest.C;
    var w = ai.lathe.model.RandomLlama.create(c, 1, 0.3, 0.1, org.nd4j.linalg.api.buffer.DataType.FLOAT);
    Path base = tmp.resolve("sharded");
    ai.lathe.model.io.HfCheckpoint.write(base, c, ai.lathe.model.io.HfCheckpoint.tensors(w), "F32", 6000, null);
    ai.lathe.model.Config cfg = AdapterMergerTest.cfg(tmp, "ties", "model", 16, "parameters.density=0.5",
        "base_model=" + base);
    MergeConfig mc = MergeConfig.from(cfg);
    AdapterMerger.run(mc, base);
    Path out = Path.of(mc.outputPath());
    try (var in = ai.lathe.model.io.HfCheckpoint.open(base); var got = ai.lathe.model.io.HfCheckpoint.open(out)) {
      assertEquals(true, in.layout().size() > 3, "the base is sharded");
      assertEquals(in.layout(), got.layout(), "same files, same tensors in each");
      // slices read what the whole read does; one past the end is refused naming the tensor
      float[] whole = in.read("model.embed_tokens.weight", c.vocabSize(), c.hiddenSize());
      float[] slice = new float[7];
      in.readSlice("model.embed_tokens.weight", 100, slice, 7);
      assertArrayEquals(Arrays.copyOfRange(whole, 100, 107), slice);
      var bad = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
          () -> in.readSlice("model.embed_tokens.weight", whole.length - 3, slice, 7));
      org.junit.jupiter.api.Assertions.assertTrue(bad.getMessage().contains("model.embed_tokens.weight"), bad.getMessage());
      List<AdapterMerger.Source> sources = AdapterMerger.open(mc, c);
      try {
        for (List<String> file : in.layout()) {
          for (String name : file) {
            float[] expect = in.read(name, in.entry(name).shape());
            String[] parts = name.split("\\.");
            if (name.endsWith("_proj.weight")) {
              int[] shape = c.moduleShape(parts[4]);
              float[] m = AdapterMerger.mergeModule(mc, sources, Integer.parseInt(parts[2]), parts[4], shape[0],
                  shape[1], expect.clone());
              for (int i = 0; m != null && i < expect.length; i++) {
                expect[i] += m[i];
              }
            }
            assertArrayEquals(expect, got.read(name, in.entry(name).shape()), name);
          }
        }
      } finally {
        AdapterMerger.close(sources);
      }
    }
  }
}
