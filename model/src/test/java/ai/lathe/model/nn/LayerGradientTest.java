package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The input gradient of every layer type against central finite differences in double precision:
 * each layer's loss is Σ c ⊙ y for a fixed random c, so dy = c.
 */
class LayerGradientTest {
  private static final DataType D = DataType.DOUBLE;

  static Buf rand(Random r, double scale, long... shape) {
    Buf b = Buf.zeros(D, shape);
    for (int i = 0; i < b.length(); i++) {
      b.set(i, scale * r.nextGaussian());
    }
    return b;
  }

  static double dot(Buf a, Buf b) {
    double s = 0;
    for (int i = 0; i < a.length(); i++) {
      s += a.get(i) * b.get(i);
    }
    return s;
  }

  /** Checks analytic gradient dx of loss() with respect to x by central differences. */
  static void check(String what, Buf x, Buf dx, Supplier<Double> loss) {
    double h = 1e-6;
    for (int i = 0; i < x.length(); i++) {
      double o = x.get(i);
      x.set(i, o + h);
      double lp = loss.get();
      x.set(i, o - h);
      double lm = loss.get();
      x.set(i, o);
      double fd = (lp - lm) / (2 * h);
      double an = dx.get(i);
      double err = Math.abs(fd - an) / Math.max(1e-6, Math.abs(fd) + Math.abs(an));
      assertTrue(err < 1e-4 || Math.abs(fd - an) < 1e-9, what + "[" + i + "]: " + an + " vs " + fd);
    }
  }

  @Test
  void rmsNorm() {
    Random r = new Random(1);
    int n = 3;
    int d = 8;
    Buf x = rand(r, 1, n, d);
    Buf w = rand(r, 1, d);
    Buf c = rand(r, 1, n, d);
    Buf y = Buf.zeros(D, n, d);
    Buf rstd = Buf.zeros(D, n);
    Buf dx = Buf.zeros(D, n, d);
    RmsNorm.forward(y, rstd, x, w, n, d, 1e-5);
    RmsNorm.backward(dx, c, x, w, rstd, n, d, false);
    check("rmsnorm dx", x, dx, () -> {
      RmsNorm.forward(y, rstd, x, w, n, d, 1e-5);
      return dot(c, y);
    });
  }

  @Test
  void ropeIsItsOwnAdjoint() {
    Random r = new Random(2);
    int b = 2;
    int t = 5;
    int heads = 3;
    int hd = 4;
    Rope rope = new Rope(hd, 10000, 16);
    Buf x = rand(r, 1, (long) b * t, heads * hd);
    Buf y = Buf.zeros(D, (long) b * heads * t, hd);
    Buf c = rand(r, 1, (long) b * heads * t, hd);
    Buf dx = Buf.zeros(D, (long) b * t, heads * hd);
    rope.fromHeads(dx, c, b, t, heads, null);
    check("rope dx", x, dx, () -> {
      rope.toHeads(y, x, b, t, heads, null);
      return dot(c, y);
    });
  }

  /** merge is split's transpose (the backward of the layout change), and its inverse. */
  @Test
  void headsMergeIsSplitsAdjointAndInverse() {
    Random r = new Random(5);
    int b = 2;
    int t = 5;
    int heads = 3;
    int hd = 4;
    Buf x = rand(r, 1, (long) b * t, heads * hd);
    Buf y = Buf.zeros(D, (long) b * heads * t, hd);
    Buf c = rand(r, 1, (long) b * heads * t, hd);
    Buf dx = Buf.zeros(D, (long) b * t, heads * hd);
    Heads.merge(dx, c, b, t, heads, hd);
    check("heads dx", x, dx, () -> {
      Heads.split(y, x, b, t, heads, hd);
      return dot(c, y);
    });
    // y[b, h, t, i] = x[b·t, h·hd + i], written out
    Heads.split(y, x, b, t, heads, hd);
    assertEquals(x.get((1 * t + 3) * heads * hd + 2 * hd + 1), y.get(((1 * heads + 2) * t + 3) * hd + 1));
    Buf back = Buf.zeros(D, (long) b * t, heads * hd);
    Heads.merge(back, y, b, t, heads, hd);
    assertEquals(x.arr, back.arr);
  }

  @Test
  void swiGlu() {
    Random r = new Random(3);
    Buf g = rand(r, 2, 4, 6);
    Buf u = rand(r, 1, 4, 6);
    Buf c = rand(r, 1, 4, 6);
    Buf h = Buf.zeros(D, 4, 6);
    Buf dg = Buf.zeros(D, 4, 6);
    Buf du = Buf.zeros(D, 4, 6);
    SwiGlu.backward(dg, du, c, g, u, 4, 6);
    Supplier<Double> loss = () -> {
      SwiGlu.forward(h, g, u, 4, 6);
      return dot(c, h);
    };
    check("swiglu dg", g, dg, loss);
    check("swiglu du", u, du, loss);
  }

  @Test
  void causalGroupedQueryAttention() {
    Random r = new Random(4);
    int b = 2;
    int t = 5;
    int heads = 4;
    int kvh = 2;
    int hd = 3;
    Attention at = new Attention(b, t, heads, kvh, hd);
    Buf q = rand(r, 1, (long) b * heads * t, hd);
    Buf k = rand(r, 1, (long) b * kvh * t, hd);
    Buf v = rand(r, 1, (long) b * kvh * t, hd);
    Buf p = Buf.zeros(D, (long) b * heads * t, t);
    Buf o = Buf.zeros(D, (long) b * heads * t, hd);
    Buf c = rand(r, 1, (long) b * heads * t, hd);
    Buf dq = Buf.zeros(D, (long) b * heads * t, hd);
    Buf dk = Buf.zeros(D, (long) b * kvh * t, hd);
    Buf dv = Buf.zeros(D, (long) b * kvh * t, hd);
    Buf dp = Buf.zeros(D, (long) b * heads * t, t);
    INDArray qv = at.queries(q.arr);
    INDArray kv = at.keys(k.arr);
    INDArray vv = at.keys(v.arr);
    INDArray pv = at.queries(p.arr);
    INDArray ov = at.queries(o.arr);
    Supplier<Double> loss = () -> {
      at.forward(ov, pv, p, qv, kv, vv);
      return dot(c, o);
    };
    loss.get();
    // causality: the first query position attends only to itself
    assertTrue(Math.abs(p.get(0) - 1.0) < 1e-12 && p.get(1) == 0.0, "causal mask");
    at.backward(at.queries(dq.arr), at.keys(dk.arr), at.keys(dv.arr), at.queries(dp.arr), dp,
        at.queries(c.arr), pv, p, qv, kv, vv);
    check("attention dq", q, dq, loss);
    check("attention dk", k, dk, loss);
    check("attention dv", v, dv, loss);
  }
}
