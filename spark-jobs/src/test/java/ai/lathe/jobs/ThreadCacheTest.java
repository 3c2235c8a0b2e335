package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** ThreadCache: least recently used out beyond its bound, and every thread's cache emptied between stages. */
class ThreadCacheTest {
  @Test
  void evictsTheLeastRecentlyUsedAndReleasesIt() {
    List<String> released = new ArrayList<>();
    Map<String, String> c = ThreadCache.<String, String>perThread(2, released::add).get();
    c.put("a", "A");
    c.put("b", "B");
    c.get("a"); // a is now the most recently used
    c.put("c", "C");
    assertEquals(List.of("B"), released);
    assertEquals(List.of("a", "c"), new ArrayList<>(c.keySet()));
  }

  @Test
  void releaseAllEmptiesEveryThreadsCache() throws Exception {
    List<String> released = Collections.synchronizedList(new ArrayList<>());
    ThreadLocal<Map<String, String>> cache = ThreadCache.perThread(4, released::add);
    List<Map<String, String>> seen = Collections.synchronizedList(new ArrayList<>());
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 2; t++) {
      String name = "t" + t;
      Thread th = new Thread(() -> {
        Map<String, String> m = cache.get();
        m.put("engine", name + "-engine");
        m.put("scorer", name + "-scorer");
        seen.add(m);
      });
      threads.add(th);
      th.start();
    }
    for (Thread th : threads) {
      th.join();
    }
    cache.get().put("driver", "driver-engine");
    int n = ThreadCache.releaseAll();
    assertTrue(n >= 5, "the two task threads' entries and this thread's: " + n);
    assertTrue(released.containsAll(List.of("t0-engine", "t0-scorer", "t1-engine", "t1-scorer", "driver-engine")),
        released.toString());
    for (Map<String, String> m : seen) {
      assertTrue(m.isEmpty(), "a task thread's cache still holds " + m);
    }
    assertTrue(cache.get().isEmpty());
  }
}
