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
 * the run it resumes) and on both kernel paths; dropped = x ⊙ keep. Masks of nearby seeds (q, k and
 * v of one layer) are independent, not one stream shifted by one element.
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

  /** SplitMix64's finaliser, written out again for the twin. */
  static long splitMix(long z) {
    long a = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    long b = (a ^ (a >>> 27)) * 0x94d049bb133111ebL;
    return b ^ (b >>> 31);
  }

  /** The naive twin: row r's mask is the first WIDTH draws of its own generator, mix(mix(seed) + r). */
  static double[] naive(long seed) {
    double[] out = new double[ROWS * WIDTH];
    for (int r = 0; r < ROWS; r++) {
      SplittableRandom rng = new SplittableRandom(splitMix(splitMix(seed) + r));
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

  @Test
  void theMixIsSplitMix64sFinaliser() {
    // SplitMix64 from state 0 first returns 0xe220a8397b1dcdaf (the reference C code, Vigna), which is
    // also SplittableRandom(0)'s first long: mix(0 + γ)
    assertEquals(0xe220a8397b1dcdafL, Seeds.mix64(0x9E3779B97F4A7C15L));
    assertEquals(new SplittableRandom(0).nextLong(), Seeds.mix64(0x9E3779B97F4A7C15L));
    assertEquals(splitMix(splitMix(-5) + 9), Seeds.derive(-5, 9));
  }

  /**
   * Masks of seeds s and s + 1 (q and k of one layer) over one shape: independent masks agree where
   * both keep or both drop, p² + (1 − p)² of the positions, also against the other mask shifted by
   * one column (with seed·γ + r both generators drew one stream, one element apart: agreement 1).
   */
  @Test
  void masksOfAdjacentSeedsAreIndependent() {
    int rows = 64;
    int width = 256;
    double p = 0.25;
    double want = p * p + (1 - p) * (1 - p);
    for (long s : new long[] {0, 1, 11, 131 * 7 + 3, -42, 1L << 40}) {
      boolean[] a = dropMask(rows, width, p, s);
      boolean[] b = dropMask(rows, width, p, s + 1);
      int same = 0;
      int shifted = 0;
      int pairs = 0;
      for (int r = 0; r < rows; r++) {
        for (int j = 0; j < width; j++) {
          int i = r * width + j;
          same += a[i] == b[i] ? 1 : 0;
          if (j + 1 < width) {
            shifted += b[i] == a[i + 1] ? 1 : 0;
            pairs++;
          }
        }
      }
      // ± 0.03 is 8 standard deviations of a fraction of ~16k independent positions
      assertEquals(want, same / (double) (rows * width), 0.03, "agreement of seeds " + s + " and " + (s + 1));
      assertEquals(want, shifted / (double) pairs, 0.03, "shifted agreement of seeds " + s + " and " + (s + 1));
    }
  }

  /** Which positions the Java kernel drops for seed (true: dropped). */
  static boolean[] dropMask(int rows, int width, double p, long seed) {
    Kernels.use(Kernels.JAVA);
    Buf keep = Buf.zeros(DataType.FLOAT, rows, width);
    Dropout.forward(Buf.zeros(DataType.FLOAT, rows, width), keep,
        org.nd4j.linalg.factory.Nd4j.ones(DataType.FLOAT, rows, width), rows, width, p, seed);
    boolean[] out = new boolean[rows * width];
    for (int i = 0; i < out.length; i++) {
      out[i] = keep.get(i) == 0.0;
    }
    return out;
  }
}
