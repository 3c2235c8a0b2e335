package ai.lathe.model.nn;

/** The gated activation of the Llama MLP: h = silu(g) ⊙ u, silu(g) = g·σ(g). */
public final class SwiGlu {
  private SwiGlu() {}

  /** forward: h = silu(g) ⊙ u, all [n, f] flattened to len. */
  public static void forward(Buf h, Buf g, Buf u, int rows, int width) {
    long t0 = Timers.start();
    forward0(h, g, u, rows, width);
    Timers.stop("mlp", t0);
  }

  private static void forward0(Buf h, Buf g, Buf u, int rows, int width) {
    if (Kernels.nd4j()) {
      OpKernels.swiGluForward(h.arr, g.arr, u.arr, (long) rows * width);
      return;
    }
    if (RowOps.VECTOR && h instanceof Buf.F32 hf) {
      Par.rows(rows, (lo, hi) -> VecF32.swiGlu(hf.bytes(), ((Buf.F32) g).bytes(), ((Buf.F32) u).bytes(),
          lo * width, (hi - lo) * width));
      return;
    }
    Par.rows(rows, (lo, hi) -> {
      for (int i = lo * width, e = hi * width; i < e; i++) {
        double x = g.get(i);
        double sig = 1.0 / (1.0 + Math.exp(-x));
        h.set(i, x * sig * u.get(i));
      }
    });
  }

  /**
   * backward: dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))), du = dh ⊙ silu(g).
   */
  public static void backward(Buf dg, Buf du, Buf dh, Buf g, Buf u, int rows, int width) {
    long t0 = Timers.start();
    backward0(dg, du, dh, g, u, rows, width);
    Timers.stop("mlp.back", t0);
  }

  private static void backward0(Buf dg, Buf du, Buf dh, Buf g, Buf u, int rows, int width) {
    if (Kernels.nd4j()) {
      OpKernels.swiGluBackward(dg.arr, du.arr, dh.arr, g.arr, u.arr, (long) rows * width);
      return;
    }
    if (RowOps.VECTOR && dg instanceof Buf.F32 f) {
      Par.rows(rows, (lo, hi) -> VecF32.swiGluBack(f.bytes(), ((Buf.F32) du).bytes(), ((Buf.F32) dh).bytes(),
          ((Buf.F32) g).bytes(), ((Buf.F32) u).bytes(), lo * width, (hi - lo) * width));
      return;
    }
    Par.rows(rows, (lo, hi) -> {
      for (int i = lo * width, e = hi * width; i < e; i++) {
        double x = g.get(i);
        double sig = 1.0 / (1.0 + Math.exp(-x));
        double d = dh.get(i);
        du.set(i, d * x * sig);
        dg.set(i, d * u.get(i) * sig * (1.0 + x * (1.0 - sig)));
      }
    });
  }
}
