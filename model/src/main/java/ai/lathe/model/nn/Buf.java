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
public abstract sealed class Buf permits Buf.F32, Buf.F64 {
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

  /** A fresh zeroed buffer of the given shape and type. */
  public static Buf zeros(DataType dt, long... shape) {
    return of(Nd4j.zeros(dt, shape));
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
}
