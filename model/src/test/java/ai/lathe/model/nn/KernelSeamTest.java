package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The ND4J-op kernels against the Java kernels, entry point by entry point (forward and backward),
 * in float and double: equal within 1e-5, and the ND4J-op path reads or writes no element from
 * the host (Buf's access counter stays at 0) while the Java path does.
 */
class KernelSeamTest {
  @AfterEach
  void reset() {
    Kernels.use(null);
    Buf.counting = false;
  }

  /** Random buffers of the given lengths, the same for every call with the same seed. */
  static Buf[] bufs(DataType dt, long seed, int... lengths) {
    Random r = new Random(seed);
    Buf[] out = new Buf[lengths.length];
    for (int i = 0; i < lengths.length; i++) {
      double[] v = new double[lengths[i]];
      for (int j = 0; j < v.length; j++) {
        v[j] = r.nextGaussian();
      }
      out[i] = Buf.of(Nd4j.createFromArray(v).castTo(dt));
    }
    return out;
  }

  /**
   * Runs body on identical inputs with each kernel set; returns every buffer's values after each
   * run, asserting the ND4J run made no host element access and the Java run some.
   */
  static double check(DataType dt, long seed, int[] lengths, Consumer<Buf[]> body) {
    List<double[][]> results = new ArrayList<>();
    for (Kernels k : Kernels.values()) {
      Buf[] b = bufs(dt, seed, lengths);
      Kernels.use(k);
      Buf.ACCESSES.set(0);
      Buf.counting = true;
      body.accept(b);
      Buf.counting = false;
      long accesses = Buf.ACCESSES.get();
      if (k == Kernels.ND4J) {
        assertEquals(0, accesses, "host element accesses on the ND4J-op path");
      } else {
        assertTrue(accesses > 0, "the Java path is counted");
      }
      double[][] vals = new double[b.length][];
      for (int i = 0; i < b.length; i++) {
        vals[i] = b[i].arr.castTo(DataType.DOUBLE).toDoubleVector();
      }
      results.add(vals);
    }
    double worst = 0;
    for (int i = 0; i < lengths.length; i++) {
      for (int j = 0; j < lengths[i]; j++) {
        double a = results.get(0)[i][j];
        double b = results.get(1)[i][j];
        assertTrue(Double.isFinite(b), "buffer " + i + "[" + j + "] is " + b);
        worst = Math.max(worst, Math.abs(a - b) / Math.max(1.0, Math.abs(a)));
      }
    }
    assertTrue(worst <= 1e-5, "ND4J-op path differs from the Java path by " + worst);
    return worst;
  }

  @Test
  void rmsNormForwardAndBackward() {
    for (DataType dt : List.of(DataType.FLOAT, DataType.DOUBLE)) {
      int n = 7;
      int d = 48;
      // y, rstd (longer than n: only the first n written), x, w
      check(dt, 1, new int[] {n * d, n + 3, n * d, d}, b -> RmsNorm.forward(b[0], b[1], b[2], b[3], n, d, 1e-5));
      // dx (accumulated into and overwritten), dy, x, w, rstd (positive)
      for (boolean acc : new boolean[] {true, false}) {
        check(dt, 2, new int[] {n * d, n * d, n * d, d, n}, b -> {
          b[4].arr.assign(org.nd4j.linalg.ops.transforms.Transforms.abs(b[4].arr).addi(0.5));
          RmsNorm.backward(b[0], b[1], b[2], b[3], b[4], n, d, acc);
        });
      }
    }
  }

  @Test
  void swiGluForwardAndBackward() {
    for (DataType dt : List.of(DataType.FLOAT, DataType.DOUBLE)) {
      int rows = 5;
      int f = 40;
      // buffers longer than rows·f: the tail stays untouched on both paths
      check(dt, 3, new int[] {rows * f + 8, rows * f, rows * f}, b -> SwiGlu.forward(b[0], b[1], b[2], rows, f));
      check(dt, 4, new int[] {rows * f, rows * f, rows * f, rows * f, rows * f},
          b -> SwiGlu.backward(b[0], b[1], b[2], b[3], b[4], rows, f));
    }
  }

  @Test
  void ropeToAndFromHeadsWithAndWithoutPositions() {
    int batch = 2;
    int seq = 5;
    int heads = 3;
    int hd = 8;
    Rope rope = new Rope(hd, 10000, 16, null);
    int[] packed = {0, 1, 2, 0, 1, 0, 1, 2, 3, 4};
    int len = batch * seq * heads * hd;
    for (DataType dt : List.of(DataType.FLOAT, DataType.DOUBLE)) {
      for (int[] pos : new int[][] {null, packed}) {
        for (boolean rotate : new boolean[] {true, false}) {
          // rotate false: the unrotated layout change (v, the attention output), Heads since Rope only rotates
          check(dt, 5, new int[] {len, len}, b -> {
            if (rotate) {
              rope.toHeads(b[0], b[1], batch, seq, heads, pos);
            } else {
              Heads.split(b[0], b[1], batch, seq, heads, hd);
            }
          });
          check(dt, 6, new int[] {len, len}, b -> {
            if (rotate) {
              rope.fromHeads(b[0], b[1], batch, seq, heads, pos);
            } else {
              Heads.merge(b[0], b[1], batch, seq, heads, hd);
            }
          });
        }
      }
    }
  }

  @Test
  void attentionSoftmaxForwardAndBackwardCausalWindowedAndPacked() {
    int batch = 2;
    int seq = 6;
    int heads = 4;
    int kv = 2;
    int hd = 8;
    int[] packed = {0, 1, 2, 3, 0, 1, 0, 1, 2, 0, 1, 2};
    int qLen = batch * heads * seq * hd;
    int kLen = batch * kv * seq * hd;
    int pLen = batch * heads * seq * seq;
    for (DataType dt : List.of(DataType.FLOAT, DataType.DOUBLE)) {
      for (int window : new int[] {0, 3}) {
        for (int[] pos : new int[][] {null, packed}) {
          Attention att = new Attention(batch, seq, heads, kv, hd, window);
          // o, p, q, k, v
          check(dt, 7, new int[] {qLen, pLen, qLen, kLen, kLen}, b -> att.forward(att.queries(view(b[0], hd)),
              att.queries(view(b[1], seq)), b[1], att.queries(view(b[2], hd)), att.keys(view(b[3], hd)),
              att.keys(view(b[4], hd)), pos));
          // dq, dk, dv, dp, dOut, p (a softmax from the forward), q, k, v
          check(dt, 8, new int[] {qLen, kLen, kLen, pLen, qLen, pLen, qLen, kLen, kLen}, b -> {
            Kernels k = Kernels.current();
            Kernels.use(Kernels.JAVA);
            boolean counting = Buf.counting;
            Buf.counting = false;
            Buf o = Buf.zeros(dt, qLen);
            att.forward(att.queries(view(o, hd)), att.queries(view(b[5], seq)), b[5], att.queries(view(b[6], hd)),
                att.keys(view(b[7], hd)), att.keys(view(b[8], hd)), pos);
            Buf.counting = counting;
            Kernels.use(k);
            att.backward(att.queries(view(b[0], hd)), att.keys(view(b[1], hd)), att.keys(view(b[2], hd)),
                att.queries(view(b[3], seq)), b[3], att.queries(view(b[4], hd)), att.queries(view(b[5], seq)), b[5],
                att.queries(view(b[6], hd)), att.keys(view(b[7], hd)), att.keys(view(b[8], hd)), pos);
          });
        }
      }
    }
  }

  static INDArray view(Buf b, int cols) {
    return b.arr.reshape('c', b.length() / cols, cols);
  }

  @Test
  void nf4DequantisationWithAndWithoutDoubleQuantisation() {
    for (boolean dq : new boolean[] {false, true}) {
      INDArray w = Nd4j.randn(DataType.FLOAT, 48, 320);
      Nf4Linear q = Nf4Linear.quantize(w, dq, DataType.FLOAT);
      for (DataType dt : List.of(DataType.FLOAT, DataType.DOUBLE)) {
        double worst = check(dt, 9, new int[] {48 * 320}, b -> {
          INDArray out = Nd4j.create(dt, 48, 320);
          q.dequantizeInto(out);
          b[0].arr.assign(out.reshape('c', new long[] {48 * 320}));
        });
        assertTrue(worst <= 1e-6, "nf4 " + worst);
      }
    }
  }

  @Test
  void theSettingNamesItsValuesAndTheBackendDecidesAuto() {
    assertEquals(Kernels.JAVA, Kernels.parse("java", "x"));
    assertEquals(Kernels.ND4J, Kernels.parse(" ND4J ", "x"));
    assertEquals(Kernels.JAVA, Kernels.parse("auto", "x"), "the CPU backend runs the Java kernels");
    assertEquals(Kernels.ND4J, Kernels.forBackend(true));
    var e = assertThrows(IllegalArgumentException.class, () -> Kernels.parse("cuda", "conf/sft.yaml: engine.kernels"));
    assertTrue(e.getMessage().contains("conf/sft.yaml: engine.kernels") && e.getMessage().contains("java, nd4j"),
        e.getMessage());
    Kernels.apply("nd4j");
    assertEquals(Kernels.ND4J, Kernels.current());
    Kernels.apply("auto");
    assertEquals(Kernels.JAVA, Kernels.current());
  }

  @Test
  void theGpuCheckNamesAnUnsupportedComputeCapabilityBeforeAnyWork() {
    var ds = Gpu.parseSmi(List.of("0, NVIDIA H200, 9.0, 143771", "1, NVIDIA A100-SXM4-80GB, 8.0, 81920", ""));
    assertEquals("GPU 1: NVIDIA A100-SXM4-80GB, compute capability 8.0, 81920 MiB", ds.get(1).toString());
    String m = Gpu.unsupported(ds);
    assertTrue(m.contains("GPU 0: NVIDIA H200, compute capability 9.0") && m.contains("8.6") && !m.contains("GPU 1"), m);
    assertEquals(null, Gpu.unsupported(ds.subList(1, 2)));
    assertTrue(Gpu.unsupported(List.of()).contains("spark.executor.resource.gpu.amount"));
    assertThrows(IllegalArgumentException.class, () -> Gpu.parseSmi(List.of("0, X, [N/A], 10")));
    // the CPU build: no CUDA backend, so the check does nothing
    assertTrue(!Gpu.cudaBackendPresent());
    Gpu.checkOnce();
  }
}
