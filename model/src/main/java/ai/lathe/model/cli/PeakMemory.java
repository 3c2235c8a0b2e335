package ai.lathe.model.cli;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.nn.QuantMode;
import ai.lathe.model.train.MemoryEstimate;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The process's peak resident set (VmHWM) next to the memory advice the jobs print. */
public final class PeakMemory {
  private PeakMemory() {}

  /** A field of /proc/self/status in kB (VmHWM: peak resident set), or -1 where there is none. */
  public static long statusKb(String field) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith(field + ":")) {
          return Long.parseLong(line.substring(field.length() + 1).trim().split("\\s+")[0]);
        }
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    return -1;
  }

  static void report(ObjectNode o, LlamaConfig c, int weightBytes, QuantMode q, int batch, int seq, boolean ckpt,
      long trainable) {
    MemoryEstimate e = MemoryEstimate.of(c, weightBytes, q, batch, seq, ckpt).withTrainable(trainable);
    long hwm = statusKb("VmHWM");
    System.out.printf("peak RSS (VmHWM) %d MiB; advice (as the jobs print it): %s%n", hwm >> 10, e.describe());
    o.put("peak_rss_bytes", hwm << 10).put("advised_bytes", e.totalBytes()).put("gradient_checkpointing", ckpt);
  }
}
