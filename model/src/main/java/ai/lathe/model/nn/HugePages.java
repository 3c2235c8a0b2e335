package ai.lathe.model.nn;

import com.sun.jna.Function;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.util.concurrent.atomic.AtomicLong;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Puts long-lived large buffers (the frozen weights, the model's activation and gradient buffers) on 2 MiB transparent huge pages, Linux only,
 * best effort.
 *
 * <p>Why: a product streams its weight through memory a block at a time; on 4 KiB pages a 64 MiB
 * weight spans 16384 pages, far more than the TLB holds, and every block copy walks page tables.
 * Measured at the 1B shape (2 threads, 4.6 GiB of fp32 weights): the frozen-weight products ran at
 * 85% of the sgemm peak on 4 KiB pages and 92% with the process's memory on huge pages; the step
 * took 8.7 s instead of 9.9 s.
 *
 * <p>How: {@code madvise(MADV_HUGEPAGE)} marks the buffer's whole 2 MiB-aligned interior, then
 * {@code madvise(MADV_COLLAPSE)} (Linux 6.1 and later) moves its already-written pages onto huge
 * pages at once (a copy, ~0.1 s per GiB). On an older kernel the collapse is refused and the kernel's
 * background thread may still do it later; with THP set to {@code never}, or off Linux, nothing
 * changes. The buffer's contents and size never change, so its memory is not rounded up.
 * {@code -Dlathe.hugepages=false} switches this off; any value but true or false is an error at
 * first use (the first buffer a model allocates, large or not).
 */
public final class HugePages {
  private static final Logger LOG = LoggerFactory.getLogger(HugePages.class);
  static final long HUGE = 2L << 20;
  private static final int MADV_HUGEPAGE = 14;
  private static final int MADV_COLLAPSE = 25;
  private static final String SETTING = System.getProperty("lathe.hugepages", "true").trim();
  private static final String BAD_SETTING = SETTING.equalsIgnoreCase("true") || SETTING.equalsIgnoreCase("false")
      ? null : "-Dlathe.hugepages=" + SETTING + ": expected true (the default) or false";
  private static final boolean ON = SETTING.equalsIgnoreCase("true") && !Kernels.cudaBackend();
  private static final Function MADVISE = lookup();
  private static final AtomicLong COLLAPSED = new AtomicLong();
  private static volatile boolean refusalLogged;

  private HugePages() {}

  private static Function lookup() {
    if (!ON || !System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
      return null;
    }
    try {
      return Function.getFunction("c", "madvise");
    } catch (Throwable t) { // JNA's native part would not load here
      LOG.info("huge pages not requested: madvise unavailable ({})", t.toString());
      return null;
    }
  }

  /** Whether buffers are put on huge pages here (switched on, Linux, CPU backend, madvise found). */
  public static boolean enabled() {
    if (BAD_SETTING != null) {
      throw new IllegalArgumentException(BAD_SETTING);
    }
    return MADVISE != null;
  }

  /** Bytes moved onto huge pages in this JVM so far. */
  public static long collapsedBytes() {
    return COLLAPSED.get();
  }

  /**
   * Advises a dense array's buffer (views and arrays under 2 MiB are left alone). Returns the bytes
   * collapsed onto huge pages now (0 when refused, too small, or switched off).
   */
  public static long advise(INDArray a) {
    if (!enabled() || a.isView() || a.isEmpty()) {
      return 0;
    }
    return advise(a.data().addressPointer().address(), a.length() * a.dataType().width());
  }

  /**
   * A zeroed array whose buffer is on huge pages where it is large enough (the model's reused
   * activation and gradient buffers): marked before it is first written, so the zeroing faults
   * it in on 2 MiB pages with no copy.
   */
  public static INDArray zeros(DataType dt, long... shape) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    if (!enabled() || n * dt.width() < 2 * HUGE) { // enabled() first: a misspelt setting stops any model
      return Nd4j.zeros(dt, shape);
    }
    INDArray a = Nd4j.createUninitialized(dt, shape);
    long address = a.data().addressPointer().address();
    long bytes = n * dt.width();
    mark(address, bytes);
    a.assign(0);
    advise(address, bytes); // collapses pages the allocator had already written (reused memory)
    return a;
  }

  /** As {@link #advise(INDArray)} for [address, address + bytes). */
  static long advise(long address, long bytes) {
    Pointer p = mark(address, bytes);
    if (p == null) {
      return 0;
    }
    long lo = Pointer.nativeValue(p);
    long hi = (address + bytes) & -HUGE;
    if (madvise(p, hi - lo, MADV_COLLAPSE) != 0) {
      refused("MADV_COLLAPSE");
      return 0;
    }
    COLLAPSED.addAndGet(hi - lo);
    return hi - lo;
  }

  /** madvise(MADV_HUGEPAGE) on the 2 MiB-aligned interior; its start, or null if none or refused. */
  private static Pointer mark(long address, long bytes) {
    if (!enabled() || address == 0) {
      return null;
    }
    long lo = (address + HUGE - 1) & -HUGE;
    long hi = (address + bytes) & -HUGE;
    if (hi - lo < HUGE) {
      return null;
    }
    Pointer p = new Pointer(lo);
    if (madvise(p, hi - lo, MADV_HUGEPAGE) != 0) {
      refused("MADV_HUGEPAGE");
      return null;
    }
    return p;
  }

  private static int madvise(Pointer p, long len, int advice) {
    return MADVISE.invokeInt(new Object[] {p, len, advice});
  }

  private static void refused(String what) {
    if (!refusalLogged) {
      refusalLogged = true;
      LOG.info("{} refused (errno {}); weights stay on the pages they have", what, Native.getLastError());
    }
  }
}
