package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Huge pages for the frozen weights: the kernel really backs the advised buffer with 2 MiB pages
 * (read back from /proc/self/smaps), the contents do not change, and small arrays and views are
 * left alone. Skipped where the kernel cannot (THP "never", or no MADV_COLLAPSE before Linux 6.1).
 */
class HugePagesTest {
  private static boolean kernelCan() throws Exception {
    Path thp = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
    if (!HugePages.enabled() || !Files.exists(thp) || Files.readString(thp).contains("[never]")) {
      return false;
    }
    String[] v = System.getProperty("os.version").split("[.-]");
    int major = Integer.parseInt(v[0]);
    int minor = Integer.parseInt(v[1]);
    return major > 6 || major == 6 && minor >= 1;
  }

  /** AnonHugePages (bytes) of the mapping holding address, from /proc/self/smaps. */
  private static long hugeBytesAt(long address) throws Exception {
    List<String> lines = Files.readAllLines(Path.of("/proc/self/smaps"));
    boolean in = false;
    for (String l : lines) {
      if (l.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
        String[] r = l.substring(0, l.indexOf(' ')).split("-");
        in = Long.parseUnsignedLong(r[0], 16) <= address && address < Long.parseUnsignedLong(r[1], 16);
      } else if (in && l.startsWith("AnonHugePages:")) {
        return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
      }
    }
    throw new AssertionError("no mapping holds " + Long.toHexString(address));
  }

  @Test
  void aWeightGoesOnHugePagesUnchanged() throws Exception {
    assumeTrue(kernelCan(), "THP or MADV_COLLAPSE unavailable here");
    INDArray w = Nd4j.rand(DataType.FLOAT, 2048, 2048); // 16 MiB: at least 7 aligned huge pages inside
    float[] before = w.data().asFloat();
    long address = w.data().addressPointer().address();
    long moved = HugePages.advise(w);
    long interior = ((address + 16L * 1048576) & -HugePages.HUGE) - ((address + HugePages.HUGE - 1) & -HugePages.HUGE);
    assertEquals(interior, moved, "the whole 2 MiB-aligned interior is collapsed");
    long mid = address + 8L * 1048576;
    assertTrue(hugeBytesAt(mid) >= moved, "smaps shows " + hugeBytesAt(mid) + " huge bytes, expected " + moved);
    assertArrayEquals(before, w.data().asFloat(), "collapsing copies the pages; the values must not change");
    assertTrue(HugePages.collapsedBytes() >= moved);
  }

  @Test
  void smallArraysAndViewsAreLeftAlone() {
    assertEquals(0, HugePages.advise(Nd4j.rand(DataType.FLOAT, 64, 64)), "16 KiB has no huge page inside");
    INDArray big = Nd4j.rand(DataType.FLOAT, 2048, 2048);
    assertEquals(0, HugePages.advise(big.get(NDArrayIndex.interval(0, 1024), NDArrayIndex.all())),
        "a view's buffer is its owner's to advise");
    assertEquals(0, HugePages.advise(0, 16L << 20), "no address, nothing done");
  }
}
