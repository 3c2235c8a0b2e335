package ai.lathe.model.nn;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;

/**
 * Splits the engine's element-wise loops over rows across a few threads. One thread (the
 * default, and what a Spark task uses) runs the loop inline; more threads are for a whole
 * machine given to one trainer.
 */
public final class Par {
  /** A loop over the rows [lo, hi). */
  @FunctionalInterface
  public interface Range {
    void run(int lo, int hi);
  }

  private static volatile int threads = 1;
  private static volatile ForkJoinPool pool;

  private Par() {}

  public static synchronized void setThreads(int n) {
    if (n < 1) {
      throw new IllegalArgumentException("threads must be >= 1");
    }
    threads = n;
    if (n > 1 && (pool == null || pool.getParallelism() != n)) {
      pool = new ForkJoinPool(n);
    }
  }

  public static int threads() {
    return threads;
  }

  public static void rows(int n, Range body) {
    int t = threads;
    if (t == 1 || n < 2 * t) {
      body.run(0, n);
      return;
    }
    ForkJoinTask<?>[] tasks = new ForkJoinTask<?>[t - 1];
    int chunk = (n + t - 1) / t;
    for (int i = 1; i < t; i++) {
      int lo = Math.min(n, i * chunk);
      int hi = Math.min(n, lo + chunk);
      tasks[i - 1] = pool.submit(() -> body.run(lo, hi));
    }
    body.run(0, Math.min(n, chunk));
    for (ForkJoinTask<?> task : tasks) {
      task.join();
    }
  }
}
