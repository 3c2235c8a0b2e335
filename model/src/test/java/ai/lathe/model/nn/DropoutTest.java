package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Dropout's mask is a function of (seed, row, column) alone: the same whatever number of threads
 * Par splits the rows over (JVM-wide state that a resumed run in a fresh JVM need not share with
 * the run it resumes) and on both kernel paths; dropped = x ⊙ keep.
 */
class DropoutTest {
  static final int ROWS = 37;
  static final int WIDTH = 24;
  static final double P = 0.25;

  @AfterEach
  void reset() {
    Par.setThreads(1);
    Kernels.use(null);
  }

  /** keep after one forward with these kernels and threads; checks dropped = x ⊙ keep on the way. */
  static double[] keep(Kernels k, int threads, long seed) {
    Kernels.use(k);
    Par.setThreads(threads);
    Buf x = KernelSeamTest.bufs(DataType.FLOAT, 5, ROWS * WIDTH)[0];
    Buf dropped = Buf.zeros(DataType.FLOAT, ROWS, WIDTH);
    Buf keep = Buf.zeros(DataType.FLOAT, ROWS, WIDTH);
    Dropout.forward(dropped, keep, x.arr.reshape('c', ROWS, WIDTH).dup('c'), ROWS, WIDTH, P, seed);
    double[] out = new double[ROWS * WIDTH];
    for (int i = 0; i < out.length; i++) {
      out[i] = keep.get(i);
      assertEquals(x.get(i) * out[i], dropped.get(i), 1e-5, "dropped = x ⊙ keep at " + i);
    }
    return out;
  }

  /** The naive twin: row r's mask is the first WIDTH draws of its own generator, seed·φ + r. */
  static double[] naive(long seed) {
    double[] out = new double[ROWS * WIDTH];
    for (int r = 0; r < ROWS; r++) {
      SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + r);
      for (int j = 0; j < WIDTH; j++) {
        out[r * WIDTH + j] = rng.nextDouble() < P ? 0.0 : (float) (1.0 / (1.0 - P));
      }
    }
    return out;
  }

  @Test
  void theMaskDependsOnNeitherTheThreadCountNorTheKernels() {
    double[] want = naive(11);
    for (Kernels k : Kernels.values()) {
      for (int threads : new int[] {1, 2, 3, 4}) {
        assertArrayEquals(want, keep(k, threads, 11), k + " kernels, " + threads + " threads");
      }
    }
    long kept = Arrays.stream(want).filter(v -> v > 0).count();
    assertTrue(Math.abs(kept / (double) want.length - (1 - P)) < 0.05, "kept fraction " + kept / (double) want.length);
    assertFalse(Arrays.equals(want, keep(Kernels.JAVA, 2, 12)), "another seed draws another mask");
  }
}
