package ai.lathe.model.gen;

import ai.lathe.model.nn.Par;

/**
 * This machine's sustained read bandwidth: the best of a few passes summing a large array (far
 * beyond any cache) over the engine's threads. Integer sums, so the JIT vectorises the loop and the
 * result is bound by memory, not by arithmetic.
 */
public final class MemoryBandwidth {
  private MemoryBandwidth() {}

  /** Bytes per second read, over an array of mib MiB, best of passes. */
  public static double readBytesPerSecond(int mib, int passes) {
    long[] a = new long[mib * (1 << 17)]; // 8 bytes per entry
    for (int i = 0; i < a.length; i++) {
      a[i] = i;
    }
    int chunks = Math.max(1, Par.threads()) * 4;
    int per = (a.length + chunks - 1) / chunks;
    long[] sink = new long[chunks];
    double best = 0;
    for (int p = 0; p < passes; p++) {
      long t0 = System.nanoTime();
      Par.rows(chunks, (lo, hi) -> {
        for (int c = lo; c < hi; c++) {
          long s = 0;
          for (int i = c * per, e = Math.min(a.length, (c + 1) * per); i < e; i++) {
            s += a[i];
          }
          sink[c] += s;
        }
      });
      double sec = (System.nanoTime() - t0) / 1e9;
      best = Math.max(best, 8.0 * a.length / sec);
    }
    long check = 0;
    for (long s : sink) {
      check += s;
    }
    if (check == 42) {
      System.out.print(""); // keeps the sums live
    }
    return best;
  }
}
