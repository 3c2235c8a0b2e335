package ai.lathe.model.nn;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Wall-clock and process CPU time per engine section, for the bench's breakdown. Off unless
 * enabled. CPU time is the whole process's (BLAS threads included) between a section's start and
 * stop, so it is right while sections run one at a time (the engine's thread drives them in turn);
 * on a shared machine it is steadier than wall time.
 */
public final class Timers {
  private static volatile boolean on;
  private static final Map<String, long[]> TOTALS = new LinkedHashMap<>(); // section -> {wall ns, cpu ns}
  /** Each open section's process CPU time at its start, by its wall start stamp (per thread: sections nest). */
  private static final ThreadLocal<Map<Long, Long>> CPU_AT_START = ThreadLocal.withInitial(java.util.HashMap::new);
  private static final com.sun.management.OperatingSystemMXBean OS =
      java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean o
          ? o : null;

  private Timers() {}

  public static void enable(boolean b) {
    on = b;
  }

  public static long start() {
    if (!on) {
      return 0L;
    }
    long t0 = System.nanoTime();
    CPU_AT_START.get().put(t0, cpuNanos());
    return t0;
  }

  /** Frozen-weight products by kind and shape: {wall ns, calls, flops}; nested inside the stages. */
  private static final Map<String, double[]> PRODUCTS = new LinkedHashMap<>();

  /** A start stamp for {@link #product} (0 while off: no clock read). */
  public static long now() {
    return on ? System.nanoTime() : 0L;
  }

  /**
   * The kinds a frozen weight [out, in] records its products under, {forward, input gradient}:
   * "x·Wᵀ 8192x2048" and "dy·W 8192x2048", with " dtype" appended for a weight held otherwise than
   * F32 (its time includes the widening). Built once per weight, not per call.
   */
  public static String[] productKinds(long out, long in, String dtype) {
    String shape = out + "x" + in + (dtype.isEmpty() ? "" : " " + dtype);
    return new String[] {"x·Wᵀ " + shape, "dy·W " + shape};
  }

  /** One frozen-weight product of flops floating-point operations, started at t0 (from {@link #now}). */
  public static void product(String kind, long t0, double flops) {
    if (on) {
      long dt = System.nanoTime() - t0;
      synchronized (PRODUCTS) {
        double[] tot = PRODUCTS.computeIfAbsent(kind, k -> new double[3]);
        tot[0] += dt;
        tot[1] += 1;
        tot[2] += flops;
      }
    }
  }

  /** The products recorded so far, {seconds, calls, flops} by kind, and a fresh start. */
  public static Map<String, double[]> productsAndReset() {
    Map<String, double[]> out = new LinkedHashMap<>();
    synchronized (PRODUCTS) {
      PRODUCTS.forEach((k, v) -> out.put(k, new double[] {v[0] / 1e9, v[1], v[2]}));
      PRODUCTS.clear();
    }
    return out;
  }

  public static void stop(String section, long t0) {
    if (on) {
      long dt = System.nanoTime() - t0;
      Long c0 = CPU_AT_START.get().remove(t0);
      long dc = c0 == null ? 0L : cpuNanos() - c0;
      synchronized (TOTALS) {
        long[] tot = TOTALS.computeIfAbsent(section, k -> new long[2]);
        tot[0] += dt;
        tot[1] += dc;
      }
    }
  }

  private static long cpuNanos() {
    return OS == null ? 0L : OS.getProcessCpuTime();
  }

  /** CPU seconds per section so far (not reset: read it before {@link #secondsAndReset}). */
  public static Map<String, Double> cpuSeconds() {
    Map<String, Double> out = new LinkedHashMap<>();
    synchronized (TOTALS) {
      TOTALS.forEach((k, v) -> out.put(k, v[1] / 1e9));
    }
    return out;
  }

  public static Map<String, Double> secondsAndReset() {
    Map<String, Double> out = new LinkedHashMap<>();
    synchronized (TOTALS) {
      TOTALS.forEach((k, v) -> out.put(k, v[0] / 1e9));
      TOTALS.clear();
    }
    CPU_AT_START.get().clear();
    return out;
  }
}
