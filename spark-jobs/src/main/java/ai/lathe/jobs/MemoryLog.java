package ai.lathe.jobs;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A diagnostic sampler: with {@code -Dlathe.memlog=FILE} a daemon thread appends, once a second, the
 * process's resident memory (VmRSS), the Java heap in use and committed, and JavaCPP's count of
 * off-heap bytes it allocated (ND4J's buffers) and of physical bytes. Lines are tab-separated:
 * epoch ms, rss_mb, heap_used_mb, heap_committed_mb, javacpp_total_mb, javacpp_physical_mb.
 */
final class MemoryLog {
  private static final Pattern RSS = Pattern.compile("VmRSS:\\s+(\\d+) kB");

  private MemoryLog() {}

  /** Starts the sampler when the property is set; otherwise does nothing. */
  static void startIfAsked() {
    String file = System.getProperty("lathe.memlog");
    if (file == null || file.isBlank()) {
      return;
    }
    Thread t = new Thread(() -> sample(Path.of(file)), "lathe-memlog");
    t.setDaemon(true);
    t.start();
  }

  private static void sample(Path file) {
    var heap = ManagementFactory.getMemoryMXBean();
    try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(file), true)) {
      out.println("ms\trss_mb\theap_used_mb\theap_committed_mb\tjavacpp_total_mb\tjavacpp_physical_mb");
      while (true) {
        var h = heap.getHeapMemoryUsage();
        out.printf("%d\t%d\t%d\t%d\t%d\t%d%n", System.currentTimeMillis(), rssKb() >> 10, h.getUsed() >> 20,
            h.getCommitted() >> 20, org.bytedeco.javacpp.Pointer.totalBytes() >> 20,
            org.bytedeco.javacpp.Pointer.physicalBytes() >> 20);
        Thread.sleep(1000);
      }
    } catch (IOException | InterruptedException e) {
      System.err.println("lathe: memory log stopped: " + e);
    }
  }

  /** VmRSS of this process in kB (0 where /proc is not there). */
  static long rssKb() {
    try {
      Matcher m = RSS.matcher(Files.readString(Path.of("/proc/self/status")));
      return m.find() ? Long.parseLong(m.group(1)) : 0;
    } catch (IOException e) {
      return 0;
    }
  }
}
