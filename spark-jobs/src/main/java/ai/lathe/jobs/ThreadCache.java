package ai.lathe.jobs;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.function.Consumer;

/**
 * A task thread's cache of engines, least recently used first out. An executor JVM lives across
 * many jobs (every stage of the pipeline, a scheduler's jobs in one application): an unbounded
 * per-thread cache would keep each stage's engines, and their activation buffers, alive until the
 * JVM exits. At most {@code max} entries stay; an evicted one is handed to {@code release} (which
 * drops the engine's cached activation buffers, so the collector can free them even while
 * something else still refers to the engine). Between jobs, {@link #releaseAll()} empties every
 * thread's cache: a stage's engines then do not outlive it (their buffers are off-heap, freed
 * when the collector finds them unreachable).
 */
final class ThreadCache<K, V> extends LinkedHashMap<K, V> {
  /** Every live cache of this JVM (weakly: a finished thread's cache goes with it). */
  private static final Set<ThreadCache<?, ?>> ALL = Collections.synchronizedSet(
      Collections.newSetFromMap(new WeakHashMap<>()));

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

  static <K, V> ThreadLocal<Map<K, V>> perThread(int max, Consumer<V> release) {
    return ThreadLocal.withInitial(() -> {
      ThreadCache<K, V> c = new ThreadCache<>(max, release);
      ALL.add(c);
      return c;
    });
  }

  @Override
  protected boolean removeEldestEntry(Map.Entry<K, V> eldest) {
    if (size() <= max) {
      return false;
    }
    release.accept(eldest.getValue());
    return true;
  }

  /**
   * Releases and removes every entry of every thread's cache; returns how many went. Call it only
   * while no task of this JVM runs (between a pipeline's stages): the caches belong to their threads.
   */
  static int releaseAll() {
    List<ThreadCache<?, ?>> caches;
    synchronized (ALL) {
      caches = new ArrayList<>(ALL);
    }
    int n = 0;
    for (ThreadCache<?, ?> c : caches) {
      n += c.releaseEntries();
    }
    return n;
  }

  private synchronized int releaseEntries() {
    int n = size();
    values().forEach(release);
    clear();
    return n;
  }

  @Override
  public boolean equals(Object o) {
    return this == o; // identity: the registry holds each cache once, whatever it holds
  }

  @Override
  public int hashCode() {
    return System.identityHashCode(this);
  }
}
