package ai.lathe.model.nn;

import java.util.LinkedHashMap;
import java.util.Map;

/** Wall-clock time per engine section, for the bench's breakdown. Off unless enabled. */
public final class Timers {
  private static volatile boolean on;
  private static final Map<String, long[]> TOTALS = new LinkedHashMap<>();

  private Timers() {}

  public static void enable(boolean b) {
    on = b;
  }

  public static long start() {
    return on ? System.nanoTime() : 0L;
  }

  public static void stop(String section, long t0) {
    if (on) {
      long dt = System.nanoTime() - t0;
      synchronized (TOTALS) {
        TOTALS.computeIfAbsent(section, k -> new long[1])[0] += dt;
      }
    }
  }

  public static Map<String, Double> secondsAndReset() {
    Map<String, Double> out = new LinkedHashMap<>();
    synchronized (TOTALS) {
      TOTALS.forEach((k, v) -> out.put(k, v[0] / 1e9));
      TOTALS.clear();
    }
    return out;
  }
}
