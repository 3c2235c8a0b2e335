package ai.lathe.model.nn;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * SIMD row kernels over float buffers (offsets in elements). Loaded only when the JVM has the
 * jdk.incubator.vector module; {@link RowOps.Scalar} holds their twins. Only exactly rounded
 * lane operations are used (no library exp, no unordered lane reductions), so results are the
 * same whether the JIT has compiled a kernel or not: training stays reproducible.
 */
final class VecF32 {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();
  private static final ByteOrder NO = ByteOrder.nativeOrder();

  private VecF32() {}

  private static final float LOG2E = 1.44269504f;
  private static final float LN2_HI = 0.693359375f;
  private static final float LN2_LO = -2.12194440e-4f;

  /**
   * exp(x) for x ≤ 0: n = round(x·log2 e), r = x − n·ln2 (two-part constant), exp(r) by its
   * degree-6 Taylor polynomial (about 1 ulp), times 2ⁿ from exponent bits; x is clamped at −87
   * (exp(−87) ≈ 1.6e−38, below any softmax probability that matters).
   */
  static FloatVector exp(FloatVector x) {
    FloatVector xc = x.max(-87.0f);
    // round to nearest by the 1.5·2²³ trick: the integer lands in the low mantissa bits
    FloatVector big = xc.fma(FloatVector.broadcast(S, LOG2E), MAGIC);
    FloatVector nf = big.sub(MAGIC);
    FloatVector r = nf.fma(FloatVector.broadcast(S, -LN2_HI), xc).add(nf.mul(-LN2_LO));
    FloatVector p = r.fma(C6, C5);
    p = p.fma(r, C4);
    p = p.fma(r, C3);
    p = p.fma(r, C2);
    p = p.fma(r, ONE);
    p = p.fma(r, ONE);
    IntVector n = big.reinterpretAsInts().sub(MAGIC_BITS);
    FloatVector pow2 = n.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return p.mul(pow2);
  }

  private static final FloatVector MAGIC = FloatVector.broadcast(S, 12582912.0f); // 1.5·2²³
  private static final int MAGIC_BITS = Float.floatToRawIntBits(12582912.0f);
  private static final FloatVector C6 = FloatVector.broadcast(S, 1f / 720);
  private static final FloatVector C5 = FloatVector.broadcast(S, 1f / 120);
  private static final FloatVector C4 = FloatVector.broadcast(S, 1f / 24);
  private static final FloatVector C3 = FloatVector.broadcast(S, 1f / 6);
  private static final FloatVector C2 = FloatVector.broadcast(S, 0.5f);
  private static final FloatVector ONE = FloatVector.broadcast(S, 1f);

  /** Sums the lanes in a fixed order (the Vector API leaves float reduction order unspecified). */
  private static double sumLanes(FloatVector v) {
    float[] t = new float[L];
    v.intoArray(t, 0);
    double s = 0;
    for (float x : t) {
      s += x;
    }
    return s;
  }

  private static FloatVector load(ByteBuffer b, int i) {
    return FloatVector.fromByteBuffer(S, b, 4 * i, NO);
  }

  static double max(ByteBuffer b, int off, int len) {
    int j = 0;
    float m = Float.NEGATIVE_INFINITY;
    if (len >= L) {
      FloatVector acc = load(b, off);
      for (j = L; j <= len - L; j += L) {
        acc = acc.max(load(b, off + j));
      }
      m = acc.reduceLanes(VectorOperators.MAX);
    }
    for (; j < len; j++) {
      m = Math.max(m, b.getFloat(4 * (off + j)));
    }
    return m;
  }

  static double expShiftSum(ByteBuffer b, int off, int len, float shift) {
    int j = 0;
    FloatVector acc = FloatVector.zero(S);
    for (; j <= len - L; j += L) {
      FloatVector e = exp(load(b, off + j).sub(shift));
      e.intoByteBuffer(b, 4 * (off + j), NO);
      acc = acc.add(e);
    }
    double s = sumLanes(acc);
    for (; j < len; j++) {
      float e = (float) FastExp.expNonPositive(b.getFloat(4 * (off + j)) - shift);
      b.putFloat(4 * (off + j), e);
      s += e;
    }
    return s;
  }

  static void scale(ByteBuffer b, int off, int len, float c) {
    int j = 0;
    for (; j <= len - L; j += L) {
      load(b, off + j).mul(c).intoByteBuffer(b, 4 * (off + j), NO);
    }
    for (; j < len; j++) {
      b.putFloat(4 * (off + j), b.getFloat(4 * (off + j)) * c);
    }
  }

  static void fill(ByteBuffer b, int off, int len, float v) {
    int j = 0;
    FloatVector fv = FloatVector.broadcast(S, v);
    for (; j <= len - L; j += L) {
      fv.intoByteBuffer(b, 4 * (off + j), NO);
    }
    for (; j < len; j++) {
      b.putFloat(4 * (off + j), v);
    }
  }

  static double dot(ByteBuffer a, ByteBuffer b, int off, int len) {
    int j = 0;
    FloatVector acc = FloatVector.zero(S);
    for (; j <= len - L; j += L) {
      acc = load(a, off + j).fma(load(b, off + j), acc);
    }
    double s = sumLanes(acc);
    for (; j < len; j++) {
      s += a.getFloat(4 * (off + j)) * b.getFloat(4 * (off + j));
    }
    return s;
  }

  static void softmaxBack(ByteBuffer p, ByteBuffer dp, int off, int len, float dot, float scale) {
    int j = 0;
    for (; j <= len - L; j += L) {
      load(dp, off + j).sub(dot).mul(load(p, off + j)).mul(scale).intoByteBuffer(dp, 4 * (off + j), NO);
    }
    for (; j < len; j++) {
      dp.putFloat(4 * (off + j), p.getFloat(4 * (off + j)) * (dp.getFloat(4 * (off + j)) - dot) * scale);
    }
  }

  /** σ(x) for any x: e = exp(−|x|), σ = (x ≥ 0 ? 1 : e)/(1 + e). */
  static FloatVector sigmoid(FloatVector x) {
    FloatVector e = exp(x.abs().neg());
    FloatVector num = e.blend(ONE, x.compare(VectorOperators.GE, 0f));
    return num.div(e.add(1f));
  }

  /** h = silu(g)·u over [off, off+len). */
  static void swiGlu(ByteBuffer h, ByteBuffer g, ByteBuffer u, int off, int len) {
    int j = 0;
    for (; j <= len - L; j += L) {
      FloatVector x = load(g, off + j);
      x.mul(sigmoid(x)).mul(load(u, off + j)).intoByteBuffer(h, 4 * (off + j), NO);
    }
    for (; j < len; j++) {
      float x = g.getFloat(4 * (off + j));
      float sg = (float) (1.0 / (1.0 + Math.exp(-x)));
      h.putFloat(4 * (off + j), x * sg * u.getFloat(4 * (off + j)));
    }
  }

  /** dg = dh·u·σ(g)(1 + g(1 − σ(g))), du = dh·silu(g). */
  static void swiGluBack(ByteBuffer dg, ByteBuffer du, ByteBuffer dh, ByteBuffer g, ByteBuffer u, int off, int len) {
    int j = 0;
    for (; j <= len - L; j += L) {
      FloatVector x = load(g, off + j);
      FloatVector sg = sigmoid(x);
      FloatVector d = load(dh, off + j);
      d.mul(x).mul(sg).intoByteBuffer(du, 4 * (off + j), NO);
      FloatVector one = ONE.sub(sg).mul(x).add(1f);
      d.mul(load(u, off + j)).mul(sg).mul(one).intoByteBuffer(dg, 4 * (off + j), NO);
    }
    for (; j < len; j++) {
      float x = g.getFloat(4 * (off + j));
      float sg = (float) (1.0 / (1.0 + Math.exp(-x)));
      float d = dh.getFloat(4 * (off + j));
      du.putFloat(4 * (off + j), d * x * sg);
      dg.putFloat(4 * (off + j), d * u.getFloat(4 * (off + j)) * sg * (1f + x * (1f - sg)));
    }
  }

  /** Σ x² over the range, lanes summed in a fixed order. */
  static double sumSquares(ByteBuffer x, int off, int len) {
    int j = 0;
    FloatVector acc = FloatVector.zero(S);
    for (; j <= len - L; j += L) {
      FloatVector v = load(x, off + j);
      acc = v.fma(v, acc);
    }
    double s = sumLanes(acc);
    for (; j < len; j++) {
      float v = x.getFloat(4 * (off + j));
      s += v * v;
    }
    return s;
  }

  /** y = w ⊙ x · r over a row at off (w from 0). */
  static void normRow(ByteBuffer y, ByteBuffer x, ByteBuffer w, int off, int len, float r) {
    int j = 0;
    for (; j <= len - L; j += L) {
      load(x, off + j).mul(r).mul(load(w, j)).intoByteBuffer(y, 4 * (off + j), NO);
    }
    for (; j < len; j++) {
      y.putFloat(4 * (off + j), w.getFloat(4 * j) * (x.getFloat(4 * (off + j)) * r));
    }
  }

  /** Σ w·dy·x over a row. */
  static double dot3(ByteBuffer w, ByteBuffer dy, ByteBuffer x, int off, int len) {
    int j = 0;
    FloatVector acc = FloatVector.zero(S);
    for (; j <= len - L; j += L) {
      acc = load(w, j).mul(load(dy, off + j)).fma(load(x, off + j), acc);
    }
    double s = sumLanes(acc);
    for (; j < len; j++) {
      s += w.getFloat(4 * j) * dy.getFloat(4 * (off + j)) * x.getFloat(4 * (off + j));
    }
    return s;
  }

  /** dx (+)= r·w·dy − c·x over a row. */
  static void normBackRow(ByteBuffer dx, ByteBuffer dy, ByteBuffer x, ByteBuffer w, int off, int len, float r,
      float c, boolean accumulate) {
    int j = 0;
    for (; j <= len - L; j += L) {
      FloatVector g = load(w, j).mul(load(dy, off + j)).mul(r).sub(load(x, off + j).mul(c));
      if (accumulate) {
        g = g.add(load(dx, off + j));
      }
      g.intoByteBuffer(dx, 4 * (off + j), NO);
    }
    for (; j < len; j++) {
      float g = r * w.getFloat(4 * j) * dy.getFloat(4 * (off + j)) - c * x.getFloat(4 * (off + j));
      dx.putFloat(4 * (off + j), accumulate ? dx.getFloat(4 * (off + j)) + g : g);
    }
  }
}
