package ai.lathe.jobs;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A task thread's cache of engines, least recently used first out. An executor JVM lives across
 * many jobs (every stage of the pipeline, a scheduler's jobs in one application): an unbounded
 * per-thread cache would keep each stage's engines, and their activation buffers, alive until the
 * JVM exits. At most {@code max} entries stay; an evicted one is handed to {@code release} (which
 * drops the engine's cached activation buffers, so the collector can free them even while
 * something else still refers to the engine).
 */
final class ThreadCache<V> extends LinkedHashMap<String, V> {
  private final int max;
  private final transient Consumer<V> release;

  private ThreadCache(int max, Consumer<V> release) {
    super(8, 0.75f, true);
    if (max < 1) {
      throw new IllegalArgumentException("a cache holds at least one entry: " + max);
    }
    this.max = max;
    this.release = release;
  }

  static <V> ThreadLocal<Map<String, V>> perThread(int max, Consumer<V> release) {
    return ThreadLocal.withInitial(() -> new ThreadCache<>(max, release));
  }

  @Override
  protected boolean removeEldestEntry(Map.Entry<String, V> eldest) {
    if (size() <= max) {
      return false;
    }
    release.accept(eldest.getValue());
    return true;
  }
}
