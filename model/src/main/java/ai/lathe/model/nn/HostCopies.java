package ai.lathe.model.nn;

import java.util.concurrent.atomic.AtomicLong;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The engine's explicit device-to-host copies on the ND4J-op path: the values a step must hand
 * to the JVM (each target's NLL, the gradient norm). Counted, like {@link Buf}'s element accesses,
 * while {@link Buf#counting} is on, so a test can assert that a step makes exactly these and no
 * other host reads.
 */
public final class HostCopies {
  private HostCopies() {}

  /** Copies made and elements copied while counting. */
  public static final AtomicLong COPIES = new AtomicLong();
  public static final AtomicLong ELEMENTS = new AtomicLong();

  /** All of a's elements, in c order, as doubles: one device-to-host copy. */
  public static double[] read(INDArray a) {
    if (Buf.counting) {
      COPIES.incrementAndGet();
      ELEMENTS.addAndGet(a.length());
    }
    return a.dup('c').castTo(DataType.DOUBLE).data().asDouble();
  }

  public static void reset() {
    COPIES.set(0);
    ELEMENTS.set(0);
  }
}
