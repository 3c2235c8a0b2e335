package ai.lathe.model.nn;

import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A frozen weight held in bitsandbytes' NF4 format: the flattened [out, in] weight in blocks of 64,
 * each block scaled by its absmax (fp32) and stored as 4-bit codes, two per byte (first element
 * in the high nibble; the last block may be short, an odd count pads the last byte). With double quantisation the absmax values
 * are stored as 8-bit codes of bitsandbytes' dynamic map in blocks of 256 (fp32 scale each) after
 * subtracting their mean. forward and backward dequantise into a per-thread scratch and run the
 * same gemm as the dense weight.
 */
public final class Nf4Linear implements FrozenLinear {
  /** The quantisation state, as bitsandbytes keeps it. */
  public record State(int out, int in, byte[] packed, float[] absmax, byte[] nestedCodes, float[] nestedAbsmax,
      float[] nestedMap, float offset) {
    public boolean doubleQuant() {
      return nestedCodes != null;
    }

    /** Checks every size and value a corrupt or mismatched state would get wrong. */
    public void validate(String what) {
      long n = (long) out * in;
      int blocks = (int) ((n + Nf4.BLOCK - 1) / Nf4.BLOCK);
      if (out <= 0 || in <= 0) {
        throw new IllegalArgumentException(what + ": shape [" + out + ", " + in + "] is not a matrix");
      }
      if (packed == null || packed.length != (n + 1) / 2) {
        throw new IllegalArgumentException(what + ": " + (packed == null ? 0 : packed.length) + " packed bytes, expected "
            + (n + 1) / 2 + " (two 4-bit codes per byte) for shape [" + out + ", " + in + "]");
      }
      if (doubleQuant()) {
        int nested = (blocks + Nf4.NESTED_BLOCK - 1) / Nf4.NESTED_BLOCK;
        if (nestedCodes.length != blocks || nestedAbsmax == null || nestedAbsmax.length != nested
            || nestedMap == null || nestedMap.length != 256) {
          throw new IllegalArgumentException(what + ": double-quantised absmax has " + nestedCodes.length + " codes, "
              + (nestedAbsmax == null ? 0 : nestedAbsmax.length) + " scales and a map of "
              + (nestedMap == null ? 0 : nestedMap.length) + "; expected " + blocks + ", " + nested + " and 256");
        }
        check(what + " nested absmax", nestedAbsmax);
        check(what + " nested quant map", nestedMap);
        if (!Float.isFinite(offset)) {
          throw new IllegalArgumentException(what + ": nested offset is " + offset);
        }
      } else {
        if (absmax == null || absmax.length != blocks) {
          throw new IllegalArgumentException(what + ": " + (absmax == null ? 0 : absmax.length)
              + " absmax values, expected " + blocks + " (one per block of " + Nf4.BLOCK + ")");
        }
        check(what + " absmax", absmax);
      }
    }

    private static void check(String what, float[] v) {
      for (int i = 0; i < v.length; i++) {
        if (!Float.isFinite(v[i])) {
          throw new IllegalArgumentException(what + "[" + i + "] is " + v[i]);
        }
      }
    }
  }

  private final State s;
  private final float[] scales; // absmax per block; null with double quantisation (dequantised per block)
  private final DataType dt;
  private final String[] kinds; // the bench's product profile

  public Nf4Linear(State s, DataType dt, String what) {
    s.validate(what);
    this.s = s;
    this.dt = dt;
    this.scales = s.doubleQuant() ? null : s.absmax();
    this.kinds = Timers.productKinds(s.out(), s.in(), "nf4");
  }

  public State state() {
    return s;
  }

  /** Quantises a dense [out, in] weight. */
  public static Nf4Linear quantize(INDArray w, boolean doubleQuant, DataType dt) {
    int out = (int) w.size(0);
    int in = (int) w.size(1);
    long n = (long) out * in;
    int blocks = (int) ((n + Nf4.BLOCK - 1) / Nf4.BLOCK);
    Buf wb = Buf.of(w.dup('c'));
    byte[] packed = new byte[(int) ((n + 1) / 2)];
    float[] absmax = new float[blocks];
    for (int b = 0; b < blocks; b++) {
      long lo = (long) b * Nf4.BLOCK;
      float m = 0;
      for (long i = lo; i < Math.min(n, lo + Nf4.BLOCK); i++) {
        m = Math.max(m, Math.abs((float) wb.get((int) i)));
      }
      absmax[b] = m;
      float inv = m == 0 ? 0 : 1.0f / m;
      for (int k = 0; k < Nf4.BLOCK && lo + k < n; k += 2) {
        long i = lo + k;
        int hi = Nf4.nearest4((float) wb.get((int) i) * inv);
        int lw = Nf4.nearest4(i + 1 < n ? (float) wb.get((int) i + 1) * inv : 0f);
        packed[(int) (i / 2)] = (byte) (hi << 4 | lw);
      }
    }
    if (!doubleQuant) {
      return new Nf4Linear(new State(out, in, packed, absmax, null, null, null, 0f), dt, "quantize");
    }
    return Nf4Blocks.doubleQuantize(out, in, packed, absmax, dt, "quantize");
  }

  private float scale(int blk) {
    return scales != null ? scales[blk]
        : s.nestedMap()[s.nestedCodes()[blk] & 0xff] * s.nestedAbsmax()[blk / Nf4.NESTED_BLOCK] + s.offset();
  }

  /** The absmax value of each block as used in dequantisation. */
  public float[] blockScales() {
    float[] a = new float[blocks()];
    for (int i = 0; i < a.length; i++) {
      a[i] = scale(i);
    }
    return a;
  }

  private int blocks() {
    return (int) (((long) s.out() * s.in() + Nf4.BLOCK - 1) / Nf4.BLOCK);
  }

  /** Dequantises into a [out, in] array of the engine's dtype. */
  public void dequantizeInto(INDArray w) {
    long n = (long) s.out() * s.in();
    if (Kernels.nd4j() && n % Nf4.BLOCK == 0) {
      INDArray[] dev = device();
      OpKernels.nf4Dequantize(w, dev[0], dev[1], dev[2], n);
      return;
    }
    dequantize(Buf.of(w));
  }

  /** The JVM kernel: elements [0, out·in) of b (c-order [out, in]) = code · block absmax. */
  private void dequantize(Buf b) {
    long n = (long) s.out() * s.in();
    byte[] p = s.packed();
    Par.rows(blocks(), (lo, hi) -> {
      for (int blk = lo; blk < hi; blk++) {
        float a = scale(blk);
        int base = blk * Nf4.BLOCK;
        for (int k = 0; k < Nf4.BLOCK && base + k < n; k += 2) {
          int i = base + k;
          int v = p[i >> 1];
          b.set(i, Nf4.CODE[(v >> 4) & 15] * a);
          if (i + 1 < n) {
            b.set(i + 1, Nf4.CODE[v & 15] * a);
          }
        }
      }
    });
  }

  private volatile INDArray[] device; // packed codes INT8 [n/2], block scales [blocks], code book [16]

  /** The quantised state as arrays, made once (on the device under CUDA) for the ND4J-op path. */
  private INDArray[] device() {
    INDArray[] d = device;
    if (d == null) {
      d = new INDArray[] {Nd4j.createFromArray(s.packed()), Nd4j.createFromArray(blockScales()),
          Nd4j.createFromArray(Nf4.CODE)};
      device = d;
    }
    return d;
  }

  /** Per-thread scratch by shape for the ND4J-op kernels (a model has a few distinct projection shapes). */
  private static final ThreadLocal<java.util.Map<String, INDArray>> SCRATCH =
      ThreadLocal.withInitial(java.util.HashMap::new);

  /**
   * Per-thread flat scratch by dtype for the JVM kernels, grown to the largest weight dequantised:
   * each shape uses its first out·in elements (c-order), so a model costs one largest projection per
   * thread, not one per distinct shape.
   */
  private static final ThreadLocal<java.util.Map<DataType, INDArray>> FLAT =
      ThreadLocal.withInitial(java.util.HashMap::new);

  /** Bytes of this thread's flat dequantisation scratch (the memory advice counts one largest projection). */
  public static long threadScratchBytes() {
    long b = 0;
    for (INDArray a : FLAT.get().values()) {
      b += a.length() * a.dataType().width();
    }
    return b;
  }

  /** A per-thread dequantised copy (valid until this thread's next NF4 dequantisation; used at once, in one gemm). */
  private INDArray scratch() {
    if (Kernels.nd4j()) {
      INDArray w = SCRATCH.get().computeIfAbsent(s.out() + "x" + s.in() + dt, k -> HugePages.zeros(dt, s.out(), s.in()));
      dequantizeInto(w);
      return w;
    }
    long n = (long) s.out() * s.in();
    java.util.Map<DataType, INDArray> m = FLAT.get();
    INDArray flat = m.get(dt);
    if (flat == null || flat.length() < n) {
      flat = HugePages.zeros(dt, n);
      m.put(dt, flat);
    }
    dequantize(Buf.of(flat));
    return (flat.length() == n ? flat : flat.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, n)))
        .reshape('c', s.out(), s.in());
  }

  @Override
  public int in() {
    return s.in();
  }

  @Override
  public int out() {
    return s.out();
  }

  @Override
  public void forward(INDArray x, INDArray y) {
    long t0 = Timers.now();
    Matmul.gemm(x, scratch(), y, false, true, 1.0, 0.0);
    Timers.product(kinds[0], t0, 2.0 * x.size(0) * out() * in());
  }

  @Override
  public void backwardInput(INDArray dy, INDArray dx, double beta) {
    long t0 = Timers.now();
    Matmul.gemm(dy, scratch(), dx, false, false, 1.0, beta);
    Timers.product(kinds[1], t0, 2.0 * dy.size(0) * out() * in());
  }

  @Override
  public INDArray dense() {
    INDArray w = Nd4j.create(dt, s.out(), s.in());
    dequantizeInto(w);
    return w;
  }

  /** Packed codes + block scales (+ nested codes, scales, offset; the shared dynamic map is not counted). */
  @Override
  public long bytes() {
    long b = s.packed().length;
    if (s.doubleQuant()) {
      b += s.nestedCodes().length + 4L * s.nestedAbsmax().length + 4 + (s.nestedMap() == Nf4.DYNAMIC ? 0 : 4L * 256);
    } else {
      b += 4L * s.absmax().length;
    }
    return b;
  }

  @Override
  public String toString() {
    return "Nf4Linear[" + s.out() + "x" + s.in() + (s.doubleQuant() ? ", double quant" : "") + "] "
        + Arrays.toString(new long[] {bytes()});
  }
}
