package ai.lathe.merge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Each deterministic method against tests/python/merge_ref.py (mergekit's definitions, numpy). */
class MergeMethodTest {
  static JsonNode gold() throws Exception {
    return new ObjectMapper().readTree(Path.of("src/test/resources/merge-golden.json").toFile());
  }

  static float[] floats(JsonNode a) {
    float[] f = new float[a.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = (float) a.get(i).asDouble();
    }
    return f;
  }

  static double[] doubles(JsonNode a) {
    double[] f = new double[a.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = a.get(i).asDouble();
    }
    return f;
  }

  @Test
  void deterministicMethodsMatchTheReference() throws Exception {
    JsonNode g = gold();
    List<float[]> deltas = new ArrayList<>();
    g.get("deltas").forEach(d -> deltas.add(floats(d)));
    double[] w = doubles(g.get("weights"));
    double[] dens = doubles(g.get("densities"));
    Map<String, Object[]> cases = Map.of(
        "linear", new Object[] {MergeMethod.LINEAR, new MergeMethod.Params(true, "total", 1.0, 0)},
        "task_arithmetic", new Object[] {MergeMethod.TASK_ARITHMETIC, new MergeMethod.Params(false, "total", 0.7, 0)},
        "ties_total", new Object[] {MergeMethod.TIES, new MergeMethod.Params(true, "total", 1.0, 0)},
        "ties_frequency", new Object[] {MergeMethod.TIES, new MergeMethod.Params(true, "frequency", 1.0, 0)},
        "ties_unnormalized", new Object[] {MergeMethod.TIES, new MergeMethod.Params(false, "total", 1.3, 0)},
        "magnitude_prune", new Object[] {MergeMethod.MAGNITUDE_PRUNE, new MergeMethod.Params(true, "total", 1.0, 0)});
    for (var e : cases.entrySet()) {
      MergeMethod m = (MergeMethod) e.getValue()[0];
      float[] got = m.merge(deltas, w, dens, (MergeMethod.Params) e.getValue()[1], 0);
      double[] exp = doubles(g.get("expected").get(e.getKey()));
      for (int i = 0; i < exp.length; i++) {
        assertEquals(exp[i], got[i], 1e-6, e.getKey() + "[" + i + "]");
      }
    }
  }

  @Test
  void magnitudeTrimKeepsTheLargestPerTensor() {
    float[] x = {0.1f, -3f, 2f, -0.5f, 1f, 0f, 2f};
    assertArrayEquals(new float[] {0, -3f, 2f, 0, 0, 0, 2f}, Sparsify.magnitude(x, 3.0 / 7));
    // a tie at the threshold goes to the lower index
    assertArrayEquals(new float[] {0, -3f, 2f, 0, 0, 0, 0}, Sparsify.magnitude(x, 2.0 / 7 + 1e-9));
    assertArrayEquals(new float[7], Sparsify.magnitude(x, 0.1));
  }

  @Test
  void dareIsReproducibleUnderItsSeedAndRescales() {
    float[] x = new float[20000];
    java.util.Arrays.fill(x, 1f);
    float[] a = Sparsify.random(x, 0.3, 42, true);
    float[] b = Sparsify.random(x, 0.3, 42, true);
    float[] c = Sparsify.random(x, 0.3, 43, true);
    assertArrayEquals(a, b);
    assertTrue(!java.util.Arrays.equals(a, c));
    double sum = 0;
    int kept = 0;
    for (float v : a) {
      sum += v;
      kept += v != 0 ? 1 : 0;
      assertTrue(v == 0 || Math.abs(v - 1 / 0.3) < 1e-5);
    }
    assertEquals(0.3, kept / 20000.0, 0.02);
    assertEquals(1.0, sum / 20000, 0.05, "rescaling keeps the expected value");
    // dare_linear = the DARE-dropped updates mixed linearly, with the same seeded masks
    List<float[]> deltas = List.of(x, x.clone());
    MergeMethod.Params p = new MergeMethod.Params(true, "total", 1.0, 5);
    float[] m1 = MergeMethod.DARE_LINEAR.merge(deltas, new double[] {1, 1}, new double[] {0.3, 0.3}, p, 9);
    float[] m2 = MergeMethod.DARE_LINEAR.merge(deltas, new double[] {1, 1}, new double[] {0.3, 0.3}, p, 9);
    assertArrayEquals(m1, m2);
    float[] d0 = Sparsify.random(x, 0.3, 5 * 1_000_003L + 9 * 31, true);
    float[] d1 = Sparsify.random(x, 0.3, 5 * 1_000_003L + 9 * 31 + 1, true);
    for (int i = 0; i < 100; i++) {
      assertEquals((d0[i] + d1[i]) / 2, m1[i], 1e-6);
    }
  }
}
