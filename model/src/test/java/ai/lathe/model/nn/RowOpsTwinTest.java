package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** The SIMD row kernels against their scalar twins, on lengths that exercise the tails. */
class RowOpsTwinTest {
  @Test
  void vectorKernelsMatchScalarTwins() {
    assertTrue(RowOps.VECTOR, "tests run with jdk.incubator.vector, so the SIMD path is the one checked");
    Random r = new Random(1);
    for (int len : new int[] {1, 7, 8, 9, 31, 64, 1000, 32003}) {
      Buf a = Buf.zeros(DataType.FLOAT, len + 5);
      Buf b = Buf.zeros(DataType.FLOAT, len + 5);
      Buf a2 = Buf.zeros(DataType.FLOAT, len + 5);
      Buf b2 = Buf.zeros(DataType.FLOAT, len + 5);
      for (int i = 0; i < len + 5; i++) {
        a.set(i, 4 * r.nextGaussian());
        b.set(i, r.nextGaussian());
      }
      a2.arr.assign(a.arr);
      b2.arr.assign(b.arr);
      int off = 3;
      double m = RowOps.max(a, off, len);
      assertEquals(RowOps.Scalar.max(a, off, len), m, 0.0);
      double s1 = RowOps.expShiftSum(a, off, len, m);
      double s2 = RowOps.Scalar.expShiftSum(a2, off, len, m);
      assertEquals(s2, s1, 1e-5 * s2);
      for (int i = 0; i < len + 5; i++) {
        assertEquals(a2.get(i), a.get(i), 1e-6 * Math.max(1, Math.abs(a2.get(i))));
      }
      assertEquals(RowOps.Scalar.dot(a2, b2, off, len), RowOps.dot(a, b, off, len), 1e-4 * Math.sqrt(len));
      RowOps.softmaxBack(a, b, off, len, 0.3, 0.125);
      RowOps.Scalar.softmaxBack(a2, b2, off, len, 0.3, 0.125);
      RowOps.scale(b, off, len, 1.5);
      RowOps.Scalar.scale(b2, off, len, 1.5);
      for (int i = 0; i < len + 5; i++) {
        assertEquals(b2.get(i), b.get(i), 1e-5 * Math.max(1, Math.abs(b2.get(i))));
      }
      // fill writes exactly [off + 1, off + len − 1) and nothing beside it
      b2.arr.assign(b.arr);
      RowOps.fill(b, off + 1, len - 2 > 0 ? len - 2 : 0, -2.5);
      RowOps.Scalar.fill(b2, off + 1, len - 2 > 0 ? len - 2 : 0, -2.5);
      for (int i = 0; i < len + 5; i++) {
        assertEquals(b2.get(i), b.get(i), 0.0, "fill [" + i + "]");
      }
    }
  }

  @Test
  void fastExpIsAccurate() {
    for (double x = -700; x <= 0; x += 0.37) {
      double e = Math.exp(x);
      assertEquals(e, FastExp.expNonPositive(x), 1e-8 * e + 1e-300);
    }
    assertEquals(0.0, FastExp.expNonPositive(-1000));
  }

  static Buf copy(Buf src, DataType dt) {
    Buf b = Buf.zeros(dt, src.arr.shape());
    for (int i = 0; i < src.length(); i++) {
      b.set(i, src.get(i));
    }
    return b;
  }

  static void close(Buf expect, Buf got, double tol, String what) {
    for (int i = 0; i < expect.length(); i++) {
      assertEquals(expect.get(i), got.get(i), tol * Math.max(1, Math.abs(expect.get(i))), what + "[" + i + "]");
    }
  }

  /** Float (SIMD) SwiGLU and RMSNorm, forward and backward, against the double (scalar) path. */
  @Test
  void simdNormAndGateMatchTheDoublePath() {
    Random r = new Random(5);
    int n = 3;
    int d = 37; // not a multiple of the vector length
    Buf g = LayerGradientTest.rand(r, 6, n, d);
    Buf u = LayerGradientTest.rand(r, 1, n, d);
    Buf dh = LayerGradientTest.rand(r, 1, n, d);
    Buf w = LayerGradientTest.rand(r, 1, d);
    Buf[] f = {copy(g, DataType.FLOAT), copy(u, DataType.FLOAT), copy(dh, DataType.FLOAT), copy(w, DataType.FLOAT)};
    Buf h64 = Buf.zeros(DataType.DOUBLE, n, d);
    Buf h32 = Buf.zeros(DataType.FLOAT, n, d);
    SwiGlu.forward(h64, g, u, n, d);
    SwiGlu.forward(h32, f[0], f[1], n, d);
    close(h64, h32, 1e-5, "swiglu");
    Buf dg64 = Buf.zeros(DataType.DOUBLE, n, d);
    Buf du64 = Buf.zeros(DataType.DOUBLE, n, d);
    Buf dg32 = Buf.zeros(DataType.FLOAT, n, d);
    Buf du32 = Buf.zeros(DataType.FLOAT, n, d);
    SwiGlu.backward(dg64, du64, dh, g, u, n, d);
    SwiGlu.backward(dg32, du32, f[2], f[0], f[1], n, d);
    close(dg64, dg32, 1e-5, "swiglu dg");
    close(du64, du32, 1e-5, "swiglu du");
    Buf y64 = Buf.zeros(DataType.DOUBLE, n, d);
    Buf y32 = Buf.zeros(DataType.FLOAT, n, d);
    Buf rs64 = Buf.zeros(DataType.DOUBLE, n);
    Buf rs32 = Buf.zeros(DataType.FLOAT, n);
    RmsNorm.forward(y64, rs64, g, w, n, d, 1e-5);
    RmsNorm.forward(y32, rs32, f[0], f[3], n, d, 1e-5);
    close(y64, y32, 1e-5, "rmsnorm");
    Buf dx64 = copy(u, DataType.DOUBLE);
    Buf dx32 = copy(u, DataType.FLOAT);
    RmsNorm.backward(dx64, dh, g, w, rs64, n, d, true);
    RmsNorm.backward(dx32, f[2], f[0], f[3], rs32, n, d, true);
    close(dx64, dx32, 1e-5, "rmsnorm dx");
  }
}
