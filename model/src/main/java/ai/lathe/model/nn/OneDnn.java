package ai.lathe.model.nn;

import static org.bytedeco.dnnl.global.dnnl.*;

import java.util.concurrent.ConcurrentHashMap;
import org.bytedeco.dnnl.const_dnnl_op_desc_t;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_matmul_desc_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_post_ops;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_attr;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Row-major fp32 products on oneDNN's matmul primitive (oneDNN 2.5.2 from JavaCPP's presets, a
 * library of its own next to the one inside ND4J, whose symbols ND4J hides).
 *
 * <p>Why: the frozen weights are stored [out, in] as checkpoints hold them, so the forward product
 * is x·Wᵀ. The sgemm behind {@code Nd4j.gemm} runs that transposed shape at ~250 GFLOP/s on this
 * machine against ~350 for the untransposed one; the matmul primitive (its brgemm kernels, which
 * copy W's blocks as they go) runs both at ~360-375 (measured alone, 2 threads, [512, 2048] by
 * [2048, 8192]). It loses on a very long inner dimension (the LM head's input gradient, K = 128256:
 * ~260 against ~325), which {@link Matmul} therefore leaves to ND4J.
 *
 * <p>One primitive per shape (dims, transposes, leading dimensions, alpha, beta), made on first use
 * and kept: a model has a few dozen. Scratchpads are the caller's (per thread), so one primitive
 * runs from several threads at once. Each call wraps the caller's buffers in memory objects, which
 * costs microseconds against the product's milliseconds.
 */
public final class OneDnn {
  private static final Logger LOG = LoggerFactory.getLogger(OneDnn.class);
  /**
   * Shapes beyond this many fall back to ND4J (generation meets a new row count with every prompt
   * length). A primitive takes ~0.5 ms to make; one whose row count is left to run time (one per
   * weight) runs at sgemm's slower rate (measured: 262 against 330 GFLOP/s), so each count gets its own.
   */
  static final int MAX_PRIMITIVES = 4096;
  private static volatile boolean fullLogged;

  private static final dnnl_engine ENGINE;
  private static final String UNAVAILABLE;
  private static final ConcurrentHashMap<Key, Prim> PRIMS = new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<String, Prim> BATCHED = new ConcurrentHashMap<>();
  private static final ThreadLocal<Local> LOCAL = ThreadLocal.withInitial(Local::new);
  private static final java.util.concurrent.atomic.LongAdder RUNS = new java.util.concurrent.atomic.LongAdder();

  static {
    dnnl_engine e = null;
    String why = null;
    try {
      e = new dnnl_engine();
      check(dnnl_engine_create(e, dnnl_cpu, 0), "engine");
    } catch (Throwable t) { // no native library for this platform, or it would not load
      e = null;
      why = t.getClass().getSimpleName() + ": " + t.getMessage();
      LOG.info("oneDNN matmul unavailable ({}); products run on ND4J's gemm", why);
    }
    ENGINE = e;
    UNAVAILABLE = why;
  }

  private OneDnn() {}

  /** Whether the library loaded (null) or why not. */
  public static String unavailableReason() {
    return UNAVAILABLE;
  }

  public static boolean loaded() {
    return ENGINE != null;
  }

  /** How many products oneDNN has run in this JVM. */
  public static long runs() {
    return RUNS.sum();
  }

  /** How many shapes have a primitive. */
  public static int primitives() {
    return PRIMS.size();
  }

  private record Key(int m, int n, int k, boolean tb, long lda, long ldb, long ldc, float alpha, float beta) {}

  private record Prim(dnnl_primitive prim, dnnl_memory_desc_t a, dnnl_memory_desc_t b, dnnl_memory_desc_t c,
      long scratchBytes, dnnl_memory_desc_t scratch) {}

  private static final class Local {
    final dnnl_stream stream = new dnnl_stream();
    final dnnl_exec_arg_t args = new dnnl_exec_arg_t(4);
    BytePointer scratch;

    Local() {
      check(dnnl_stream_create(stream, ENGINE, dnnl_stream_default_flags), "stream");
    }

    BytePointer scratch(long bytes) {
      if (scratch == null || scratch.capacity() < bytes) {
        if (scratch != null) {
          scratch.deallocate();
        }
        scratch = new BytePointer(Math.max(bytes, 1));
      }
      return scratch;
    }
  }

  /**
   * c = alpha·a·op(b) + beta·c on raw row-major blocks: a is [m, k], op(b) [k, n] (b stored [n, k]
   * when tb), c [m, n]; ld* are row strides in elements; the
   * pointers point at each block's first element. False, with nothing written, when oneDNN is not
   * loaded, has no primitive for the shape, or the cache is full: the caller then runs its own gemm.
   */
  public static boolean gemm(boolean tb, int m, int n, int k, float alpha, Pointer a, long lda, Pointer b,
      long ldb, float beta, Pointer c, long ldc) {
    if (ENGINE == null) {
      return false;
    }
    Key key = new Key(m, n, k, tb, lda, ldb, ldc, alpha, beta);
    Prim p = PRIMS.get(key);
    if (p == null) {
      if (PRIMS.size() >= MAX_PRIMITIVES) {
        if (!fullLogged) {
          fullLogged = true;
          LOG.info("oneDNN holds {} product shapes; new shapes run on ND4J's gemm", MAX_PRIMITIVES);
        }
        return false;
      }
      p = create(key, desc(m, k, false, lda), desc(k, n, tb, ldb), desc(m, n, false, ldc), alpha, beta);
      if (p == null) {
        return false;
      }
      Prim prev = PRIMS.putIfAbsent(key, p);
      if (prev != null) {
        p = prev; // another thread made it first; this one's is simply not used
      }
    }
    execute(p, a, b, c);
    return true;
  }

  /**
   * c = alpha·a·b + beta·c on N-d fp32 tensors given by dims and element strides (batched matmul:
   * the last two dims are the product's, the leading ones batch; a batch dim of b may be 1 and is
   * then broadcast, as grouped-query attention shares a key head). Transposes are just strides.
   * False, with nothing written, when oneDNN is not loaded, refuses the shape, or holds
   * {@link #MAX_PRIMITIVES} batched shapes already.
   */
  public static boolean matmul(long[] aDims, long[] aStrides, Pointer a, long[] bDims, long[] bStrides, Pointer b,
      long[] cDims, long[] cStrides, Pointer c, float alpha, float beta) {
    if (ENGINE == null) {
      return false;
    }
    String key = java.util.Arrays.toString(aDims) + java.util.Arrays.toString(aStrides) + java.util.Arrays.toString(bDims)
        + java.util.Arrays.toString(bStrides) + java.util.Arrays.toString(cDims) + java.util.Arrays.toString(cStrides)
        + alpha + "," + beta;
    Prim p = BATCHED.get(key);
    if (p == null) {
      if (BATCHED.size() >= MAX_PRIMITIVES) {
        return false;
      }
      p = create(key, nd(aDims, aStrides), nd(bDims, bStrides), nd(cDims, cStrides), alpha, beta);
      if (p == null) {
        return false;
      }
      Prim prev = BATCHED.putIfAbsent(key, p);
      if (prev != null) {
        p = prev;
      }
    }
    execute(p, a, b, c);
    return true;
  }

  private static dnnl_memory_desc_t nd(long[] dims, long[] strides) {
    dnnl_memory_desc_t d = new dnnl_memory_desc_t();
    check(dnnl_memory_desc_init_by_strides(d, dims.length, dims, dnnl_f32, strides), "memory desc");
    return d;
  }

  private static void execute(Prim p, Pointer a, Pointer b, Pointer c) {
    Local l = LOCAL.get();
    dnnl_memory ma = memory(p.a(), a);
    dnnl_memory mb = memory(p.b(), b);
    dnnl_memory mc = memory(p.c(), c);
    dnnl_memory ms = p.scratchBytes() > 0 ? memory(p.scratch(), l.scratch(p.scratchBytes())) : null;
    try {
      dnnl_exec_arg_t args = l.args;
      args.position(0).arg(DNNL_ARG_SRC).memory(ma);
      args.position(1).arg(DNNL_ARG_WEIGHTS).memory(mb);
      args.position(2).arg(DNNL_ARG_DST).memory(mc);
      int n3 = 3;
      if (ms != null) {
        args.position(3).arg(DNNL_ARG_SCRATCHPAD).memory(ms);
        n3 = 4;
      }
      args.position(0);
      check(dnnl_primitive_execute(p.prim(), l.stream, n3, args), "execute");
      check(dnnl_stream_wait(l.stream), "wait");
      RUNS.increment();
    } finally {
      dnnl_memory_destroy(ma);
      dnnl_memory_destroy(mb);
      dnnl_memory_destroy(mc);
      if (ms != null) {
        dnnl_memory_destroy(ms);
      }
    }
  }

  private static dnnl_memory memory(dnnl_memory_desc_t d, Pointer data) {
    dnnl_memory m = new dnnl_memory();
    check(dnnl_memory_create(m, d, ENGINE, data), "memory");
    return m;
  }

  /** A [rows, cols] fp32 block with row stride ld, read transposed (stored [cols, rows]) when t. */
  private static dnnl_memory_desc_t desc(long rows, long cols, boolean t, long ld) {
    dnnl_memory_desc_t d = new dnnl_memory_desc_t();
    long[] strides = t ? new long[] {1, ld} : new long[] {ld, 1};
    check(dnnl_memory_desc_init_by_strides(d, 2, new long[] {rows, cols}, dnnl_f32, strides), "memory desc");
    return d;
  }

  private static Prim create(Object k, dnnl_memory_desc_t a, dnnl_memory_desc_t b, dnnl_memory_desc_t c,
      float alpha, float beta) {
    dnnl_primitive_attr attr = new dnnl_primitive_attr();
    dnnl_post_ops ops = null;
    dnnl_primitive_desc pd = new dnnl_primitive_desc();
    boolean pdMade = false;
    try {
      check(dnnl_primitive_attr_create(attr), "attr");
      check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
      if (alpha != 1f) {
        check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, new float[] {alpha}), "alpha");
      }
      if (beta != 0f) {
        ops = new dnnl_post_ops();
        check(dnnl_post_ops_create(ops), "post ops");
        check(dnnl_post_ops_append_sum(ops, beta), "beta");
        check(dnnl_primitive_attr_set_post_ops(attr, ops), "post ops");
      }
      dnnl_matmul_desc_t op = new dnnl_matmul_desc_t();
      check(dnnl_matmul_desc_init(op, a, b, null, c), "matmul desc");
      int s = dnnl_primitive_desc_create(pd, new const_dnnl_op_desc_t(op), attr, ENGINE, null);
      if (s != dnnl_success) {
        LOG.warn("oneDNN has no matmul for {} (status {}); ND4J's gemm runs it", k, s);
        return null;
      }
      pdMade = true;
      dnnl_memory_desc_t scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
      long scratchBytes = dnnl_memory_desc_get_size(scratch);
      dnnl_primitive prim = new dnnl_primitive();
      check(dnnl_primitive_create(prim, pd), "primitive");
      return new Prim(prim, a, b, c, scratchBytes, scratchBytes > 0 ? copy(scratch) : null);
    } catch (IllegalStateException e) { // a descriptor oneDNN refused: ND4J runs this shape
      LOG.warn("oneDNN matmul for {} not made ({}); ND4J's gemm runs it", k, e.getMessage());
      return null;
    } finally {
      if (pdMade) {
        dnnl_primitive_desc_destroy(pd);
      }
      if (ops != null) {
        dnnl_post_ops_destroy(ops);
      }
      dnnl_primitive_attr_destroy(attr);
    }
  }

  /** A memory descriptor of our own (a queried one lives in the primitive descriptor, destroyed above). */
  private static dnnl_memory_desc_t copy(dnnl_memory_desc_t d) {
    dnnl_memory_desc_t own = new dnnl_memory_desc_t();
    Pointer.memcpy(own, d, own.sizeof());
    return own;
  }

  private static void check(int status, String what) {
    if (status != dnnl_success) {
      throw new IllegalStateException("oneDNN " + what + " failed with status " + status);
    }
  }
}
