package ai.lathe.model.nn;

/**
 * Row kernels of the softmax paths (attention and LM head). Float buffers use SIMD code
 * ({@link VecF32}, the JDK's Vector API) when the JVM was started with
 * {@code --add-modules jdk.incubator.vector}; otherwise, and for double buffers, the scalar
 * twins below run. A test holds the two together.
 */
public final class RowOps {
  /** Whether the SIMD kernels are in use. */
  public static final boolean VECTOR = probe();

  private RowOps() {}

  private static boolean probe() {
    if (Boolean.getBoolean("lathe.noVector")) {
      return false;
    }
    return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
  }

  private static boolean simd(Buf b) {
    return VECTOR && b instanceof Buf.F32;
  }

  public static double max(Buf b, int off, int len) {
    if (simd(b)) {
      return VecF32.max(((Buf.F32) b).bytes(), off, len);
    }
    return Scalar.max(b, off, len);
  }

  /** b[i] = exp(b[i] − shift) over the range; returns the sum. */
  public static double expShiftSum(Buf b, int off, int len, double shift) {
    if (simd(b)) {
      return VecF32.expShiftSum(((Buf.F32) b).bytes(), off, len, (float) shift);
    }
    return Scalar.expShiftSum(b, off, len, shift);
  }

  public static void scale(Buf b, int off, int len, double c) {
    if (simd(b)) {
      VecF32.scale(((Buf.F32) b).bytes(), off, len, (float) c);
      return;
    }
    Scalar.scale(b, off, len, c);
  }

  public static void fill(Buf b, int off, int len, double v) {
    if (simd(b)) {
      VecF32.fill(((Buf.F32) b).bytes(), off, len, (float) v);
      return;
    }
    Scalar.fill(b, off, len, v);
  }

  public static double dot(Buf a, Buf b, int off, int len) {
    if (simd(a) && simd(b)) {
      return VecF32.dot(((Buf.F32) a).bytes(), ((Buf.F32) b).bytes(), off, len);
    }
    return Scalar.dot(a, b, off, len);
  }

  /** dp = p ⊙ (dp − dot)·scale over the range. */
  public static void softmaxBack(Buf p, Buf dp, int off, int len, double dot, double scale) {
    if (simd(p) && simd(dp)) {
      VecF32.softmaxBack(((Buf.F32) p).bytes(), ((Buf.F32) dp).bytes(), off, len, (float) dot, (float) scale);
      return;
    }
    Scalar.softmaxBack(p, dp, off, len, dot, scale);
  }

  /** The scalar twins. */
  public static final class Scalar {
    private Scalar() {}

    public static double max(Buf b, int off, int len) {
      double m = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < len; j++) {
        m = Math.max(m, b.get(off + j));
      }
      return m;
    }

    public static double expShiftSum(Buf b, int off, int len, double shift) {
      double s = 0;
      for (int j = 0; j < len; j++) {
        double e = FastExp.expNonPositive(b.get(off + j) - shift);
        b.set(off + j, e);
        s += e;
      }
      return s;
    }

    public static void fill(Buf b, int off, int len, double v) {
      for (int j = 0; j < len; j++) {
        b.set(off + j, v);
      }
    }

    public static void scale(Buf b, int off, int len, double c) {
      for (int j = 0; j < len; j++) {
        b.set(off + j, b.get(off + j) * c);
      }
    }

    public static double dot(Buf a, Buf b, int off, int len) {
      double s = 0;
      for (int j = 0; j < len; j++) {
        s += a.get(off + j) * b.get(off + j);
      }
      return s;
    }

    public static void softmaxBack(Buf p, Buf dp, int off, int len, double dot, double scale) {
      for (int j = 0; j < len; j++) {
        dp.set(off + j, p.get(off + j) * (dp.get(off + j) - dot) * scale);
      }
    }
  }
}
