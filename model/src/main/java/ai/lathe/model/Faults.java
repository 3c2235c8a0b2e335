package ai.lathe.model;

import java.util.List;
import java.util.ServiceLoader;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The test-only seam for fault injection: production code names the points where a failure
 * matters ({@code Faults.at("sft.round.start", partition, step)}) and does nothing else there.
 * A test installs a {@link Hook} that throws (or halts the JVM) at the point it wants; executor
 * JVMs of a multi-JVM test get theirs through {@code META-INF/services} on the test classpath.
 * With no hook installed (every production run) a point is an empty loop.
 */
public final class Faults {
  /** Points named by production code, with what {@code a} and {@code b} carry. */
  public static final String SFT_ROUND_START = "sft.round.start"; // a: partition, b: first step
  public static final String ROUND_DONE = "averaging.round.done"; // a: round (after its checkpoint)
  public static final String PREP_BEFORE_COMMIT = "prep.before.commit";

  /** Called at every point; throws (or halts) to inject a failure there. */
  @FunctionalInterface
  public interface Hook {
    void at(String point, long a, long b);
  }

  private static final List<Hook> HOOKS = new CopyOnWriteArrayList<>();

  static {
    ServiceLoader.load(Hook.class).forEach(HOOKS::add);
  }

  private Faults() {}

  public static void at(String point, long a, long b) {
    for (Hook h : HOOKS) {
      h.at(point, a, b);
    }
  }

  /** Installs a hook in this JVM until the returned handle is closed (tests only). */
  public static AutoCloseable install(Hook h) {
    HOOKS.add(h);
    return () -> HOOKS.remove(h);
  }
}
