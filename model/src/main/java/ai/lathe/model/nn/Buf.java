package ai.lathe.model.nn;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Element access to the off-heap memory of a dense, non-view INDArray, without copying.
 * The engine keeps every tensor in INDArrays so that {@code Nd4j.gemm} runs on them, and
 * does its element-wise work (norms, rotary embedding, softmax) in plain loops over a Buf.
 * Two variants exist so the same code runs in float (training) and double (gradient checks).
 */
public abstract sealed class Buf permits Buf.F32, Buf.F64, Buf.Half {
  public final INDArray arr;

  Buf(INDArray arr) {
    this.arr = arr;
  }

  /**
   * Host element accesses (get, set, and each handing out of the raw bytes to a SIMD kernel)
   * counted while {@link #counting} is on: the test that the ND4J-op kernels touch no element.
   */
  public static final java.util.concurrent.atomic.AtomicLong ACCESSES = new java.util.concurrent.atomic.AtomicLong();

  public static boolean counting;

  static void counted() {
    if (counting) {
      ACCESSES.incrementAndGet();
    }
  }

  public abstract double get(int i);

  public abstract void set(int i, double v);

  public final void add(int i, double v) {
    set(i, get(i) + v);
  }

  public final int length() {
    return (int) arr.length();
  }

  /** A fresh zeroed buffer of the given shape and type (on huge pages when large: {@link HugePages}). */
  public static Buf zeros(DataType dt, long... shape) {
    return of(HugePages.zeros(dt, shape));
  }

  public static Buf of(INDArray a) {
    if (a.isView() || a.offset() != 0 || a.ordering() != 'c') {
      throw new IllegalArgumentException("Buf needs a dense c-order array, not a view");
    }
    if (a.length() > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("tensor too large for one buffer: " + a.length());
    }
    return switch (a.dataType()) {
      case FLOAT -> new F32(a);
      case DOUBLE -> new F64(a);
      case BFLOAT16, HALF -> new Half(a);
      default -> throw new IllegalArgumentException("unsupported dtype " + a.dataType());
    };
  }

  public void zero() {
    arr.assign(0);
  }

  public static final class F32 extends Buf {
    private final FloatBuffer b;
    private final java.nio.ByteBuffer bytes;

    F32(INDArray a) {
      super(a);
      this.bytes = a.data().asNio().order(java.nio.ByteOrder.nativeOrder());
      this.b = bytes.asFloatBuffer();
    }

    /** The same memory as bytes in native order, for SIMD kernels. */
    public java.nio.ByteBuffer bytes() {
      counted();
      return bytes;
    }

    @Override
    public double get(int i) {
      counted();
      return b.get(i);
    }

    @Override
    public void set(int i, double v) {
      counted();
      b.put(i, (float) v);
    }
  }

  public static final class F64 extends Buf {
    private final DoubleBuffer b;

    F64(INDArray a) {
      super(a);
      this.b = a.data().asNioDouble();
    }

    @Override
    public double get(int i) {
      counted();
      return b.get(i);
    }

    @Override
    public void set(int i, double v) {
      counted();
      b.put(i, v);
    }
  }

  /**
   * A read-mostly tensor held as 16-bit floats (BF16 or F16, as the checkpoint stores them): get
   * widens one element, set rounds to nearest even. Frozen weights only; the hot path widens
   * whole rows through {@link #widenRows}.
   */
  public static final class Half extends Buf {
    private final java.nio.ShortBuffer b;
    private final boolean bf16;

    Half(INDArray a) {
      super(a);
      this.b = a.data().asNio().order(java.nio.ByteOrder.nativeOrder()).asShortBuffer();
      this.bf16 = a.dataType() == DataType.BFLOAT16;
    }

    /** A tensor of the given shape from raw little-endian 16-bit values (bits, as in safetensors). */
    public static Half ofBits(short[] bits, boolean bf16, long... shape) {
      long n = 1;
      for (long s : shape) {
        n *= s;
      }
      if (n != bits.length) {
        throw new IllegalArgumentException(bits.length + " values for shape " + java.util.Arrays.toString(shape));
      }
      Half h = (Half) of(Nd4j.create(bf16 ? DataType.BFLOAT16 : DataType.HALF, shape, 'c'));
      h.b.put(0, bits);
      return h;
    }

    /** A zeroed tensor of the given shape. */
    public static Half zeros(boolean bf16, long... shape) {
      return (Half) of(Nd4j.create(bf16 ? DataType.BFLOAT16 : DataType.HALF, shape, 'c'));
    }

    /** The tensor's memory as little-endian bytes (to fill it straight from a file). */
    public java.nio.ByteBuffer rawBytes() {
      return arr.data().asNio().order(java.nio.ByteOrder.LITTLE_ENDIAN);
    }

    public boolean bf16() {
      return bf16;
    }

    public short bits(int i) {
      return b.get(i);
    }

    @Override
    public double get(int i) {
      return widen(b.get(i));
    }

    @Override
    public void set(int i, double v) {
      b.put(i, bf16 ? HalfFloat.toBf16((float) v) : HalfFloat.toF16((float) v));
    }

    private float widen(short s) {
      return bf16 ? HalfFloat.bf16(s) : HalfFloat.f16(s);
    }

    /** dst[k] = this[start + k] for k in [0, count), widened to float. */
    public void widen(int start, java.nio.FloatBuffer dst, int dstOff, int count) {
      counted();
      if (bf16) {
        for (int k = 0; k < count; k++) {
          dst.put(dstOff + k, Float.intBitsToFloat(b.get(start + k) << 16));
        }
      } else {
        for (int k = 0; k < count; k++) {
          dst.put(dstOff + k, HalfFloat.f16(b.get(start + k)));
        }
      }
    }
  }
}
