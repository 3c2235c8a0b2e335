package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The frozen weights' products on oneDNN against a naive double-precision twin: both transposes of
 * b, alpha and beta, row views with offsets and row strides, odd sizes, several threads at once on
 * the same shapes; that oneDNN, not ND4J, ran them; and the products it must leave to ND4J.
 */
class MatmulTest {
  @BeforeEach
  void everySize() {
    Matmul.setMinimums(1, 0); // small shapes keep the naive twin quick; the size rule has its own test
  }

  @AfterEach
  void restore() {
    Matmul.setOneDnn(true);
    Matmul.setMinimums(Matmul.MIN_ROWS, Matmul.MIN_FLOPS);
  }

  private static INDArray rand(Random r, long rows, long cols) {
    float[] v = new float[(int) (rows * cols)];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) r.nextGaussian();
    }
    return Nd4j.create(v, new long[] {rows, cols}, 'c');
  }

  /** alpha·op(a)·op(b) + beta·c0 in double from the arrays' elements. */
  private static double[][] naive(INDArray a, INDArray b, INDArray c0, boolean ta, boolean tb, double alpha,
      double beta) {
    long m = ta ? a.size(1) : a.size(0);
    long k = ta ? a.size(0) : a.size(1);
    long n = tb ? b.size(0) : b.size(1);
    double[][] out = new double[(int) m][(int) n];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int p = 0; p < k; p++) {
          double x = ta ? a.getDouble(p, i) : a.getDouble(i, p);
          double y = tb ? b.getDouble(j, p) : b.getDouble(p, j);
          s += x * y;
        }
        out[i][j] = alpha * s + beta * c0.getDouble(i, j);
      }
    }
    return out;
  }

  private static void assertClose(double[][] want, INDArray c, double tol, String what) {
    for (int i = 0; i < want.length; i++) {
      for (int j = 0; j < want[i].length; j++) {
        double w = want[i][j];
        assertEquals(w, c.getDouble(i, j), tol * (1 + Math.abs(w)), what + " at [" + i + ", " + j + "]");
      }
    }
  }

  @Test
  void oneDnnLoadsOnThisMachine() {
    assertNull(OneDnn.unavailableReason(), "oneDNN should load on linux-x86_64");
    assertTrue(OneDnn.loaded());
  }

  @Test
  void productsMatchNaiveTwinAndRunOnOneDnn() {
    Random r = new Random(11);
    int[][] shapes = {{1, 1, 1}, {7, 5, 3}, {33, 65, 17}, {64, 48, 96}, {5, 130, 260}};
    for (int[] s : shapes) {
      for (boolean tb : new boolean[] {false, true}) {
        for (double[] ab : new double[][] {{1, 0}, {1, 1}, {0.5, -2}}) {
          int m = s[0];
          int n = s[1];
          int k = s[2];
          INDArray a = rand(r, m, k);
          INDArray b = tb ? rand(r, n, k) : rand(r, k, n);
          INDArray c = rand(r, m, n);
          double[][] want = naive(a, b, c.dup(), false, tb, ab[0], ab[1]);
          long before = OneDnn.runs();
          Matmul.gemm(a, b, c, false, tb, ab[0], ab[1]);
          assertEquals(before + 1, OneDnn.runs(), "oneDNN ran " + m + "x" + n + "x" + k);
          assertClose(want, c, 1e-5, m + "x" + n + "x" + k + (tb ? " NT" : " NN") + " alpha " + ab[0] + " beta "
              + ab[1]);
        }
      }
    }
  }

  @Test
  void rowViewsWithOffsetsAndStrides() {
    Random r = new Random(12);
    INDArray bigA = rand(r, 40, 30);
    INDArray bigW = rand(r, 50, 30);
    INDArray bigC = rand(r, 60, 70);
    INDArray a = bigA.get(NDArrayIndex.interval(3, 20), NDArrayIndex.interval(5, 25)); // [17, 20], row stride 30
    INDArray w = bigW.get(NDArrayIndex.interval(10, 33), NDArrayIndex.interval(2, 22)); // [23, 20]
    INDArray c = bigC.get(NDArrayIndex.interval(7, 24), NDArrayIndex.interval(11, 34)); // [17, 23], stride 70
    INDArray untouched = bigC.dup();
    double[][] want = naive(a, w, c.dup(), false, true, 1, 1);
    long before = OneDnn.runs();
    Matmul.gemm(a, w, c, false, true, 1.0, 1.0);
    assertEquals(before + 1, OneDnn.runs(), "views go to oneDNN");
    assertClose(want, c, 1e-5, "view product");
    for (int i = 0; i < 60; i++) { // nothing outside the output view moved
      for (int j = 0; j < 70; j++) {
        if (i < 7 || i >= 24 || j < 11 || j >= 34) {
          assertEquals(untouched.getDouble(i, j), bigC.getDouble(i, j), 0.0, "outside the view at " + i + "," + j);
        }
      }
    }
  }

  @Test
  void reshapedSliceOfAFlatBuffer() {
    Random r = new Random(16);
    INDArray flat = rand(r, 1, 1000).reshape(1000);
    INDArray x = flat.get(NDArrayIndex.interval(37, 37 + 12 * 20)).reshape('c', 12, 20); // offset 37 in its buffer
    INDArray w = rand(r, 9, 20);
    INDArray outFlat = Nd4j.zeros(DataType.FLOAT, 500);
    INDArray y = outFlat.get(NDArrayIndex.interval(101, 101 + 12 * 9)).reshape('c', 12, 9);
    double[][] want = naive(x, w, y.dup(), false, true, 1, 0);
    long before = OneDnn.runs();
    Matmul.gemm(x, w, y, false, true, 1.0, 0.0);
    assertEquals(before + 1, OneDnn.runs(), "a reshaped slice goes to oneDNN");
    assertClose(want, y, 1e-5, "reshaped slice");
    assertEquals(0.0, outFlat.get(NDArrayIndex.interval(0, 101)).amaxNumber().doubleValue(), 0.0, "before the slice");
    assertEquals(0.0, outFlat.get(NDArrayIndex.interval(101 + 108, 500)).amaxNumber().doubleValue(), 0.0,
        "after the slice");
  }

  @Test
  void leftToNd4jWhereOneDnnIsSlowerOrCannot() {
    Random r = new Random(13);
    INDArray a = rand(r, 3, Matmul.MAX_INNER + 1);
    INDArray b = rand(r, 2, Matmul.MAX_INNER + 1);
    INDArray c = Nd4j.zeros(DataType.FLOAT, 3, 2);
    long before = OneDnn.runs();
    Matmul.gemm(a, b, c, false, true, 1.0, 0.0);
    assertClose(naive(a, b, c.dup(), false, true, 1, 0), c, 1e-4, "long inner dimension");
    INDArray an = rand(r, 3, Matmul.MAX_INNER_NN + 1);
    INDArray bn = rand(r, Matmul.MAX_INNER_NN + 1, 2);
    INDArray cn = Nd4j.zeros(DataType.FLOAT, 3, 2);
    Matmul.gemm(an, bn, cn, false, false, 1.0, 0.0);
    assertClose(naive(an, bn, cn.dup(), false, false, 1, 0), cn, 1e-4, "long inner dimension, untransposed");
    INDArray at = rand(r, 6, 4);
    INDArray b2 = rand(r, 6, 5);
    INDArray c2 = Nd4j.zeros(DataType.FLOAT, 4, 5);
    Matmul.gemm(at, b2, c2, true, false, 1.0, 0.0);
    assertClose(naive(at, b2, c2.dup(), true, false, 1, 0), c2, 1e-5, "transposed a");
    INDArray ad = rand(r, 4, 6).castTo(DataType.DOUBLE);
    INDArray bd = rand(r, 6, 3).castTo(DataType.DOUBLE);
    INDArray cd = Nd4j.zeros(DataType.DOUBLE, 4, 3);
    Matmul.gemm(ad, bd, cd, false, false, 1.0, 0.0);
    assertClose(naive(ad, bd, cd.dup(), false, false, 1, 0), cd, 1e-12, "double");
    Matmul.setOneDnn(false);
    INDArray c3 = Nd4j.zeros(DataType.FLOAT, 3, 4);
    INDArray a3 = rand(r, 3, 8);
    INDArray b3 = rand(r, 4, 8);
    Matmul.gemm(a3, b3, c3, false, true, 1.0, 0.0);
    assertClose(naive(a3, b3, c3.dup(), false, true, 1, 0), c3, 1e-5, "switched off");
    assertEquals(before, OneDnn.runs(), "none of these ran on oneDNN");
  }

  @Test
  void smallProductsStayOnNd4jByDefault() {
    Matmul.setMinimums(Matmul.MIN_ROWS, Matmul.MIN_FLOPS);
    Random r = new Random(15);
    long before = OneDnn.runs();
    INDArray x1 = rand(r, 1, 2048); // one decoding step: a matrix-vector product
    INDArray w = rand(r, 1024, 2048);
    INDArray y1 = Nd4j.zeros(DataType.FLOAT, 1, 1024);
    Matmul.gemm(x1, w, y1, false, true, 1.0, 0.0);
    INDArray xs = rand(r, 64, 256); // a small model's projection: 2·64·256·256 FLOPs < 2^28
    INDArray ws = rand(r, 256, 256);
    INDArray ys = Nd4j.zeros(DataType.FLOAT, 64, 256);
    Matmul.gemm(xs, ws, ys, false, true, 1.0, 0.0);
    assertEquals(before, OneDnn.runs(), "small products ran on oneDNN");
    assertClose(naive(xs, ws, ys.dup(), false, true, 1, 0), ys, 1e-4, "small product");
    INDArray xb = rand(r, 128, 2048); // 2·128·1024·2048 = 2^29 FLOPs: oneDNN
    INDArray yb = Nd4j.zeros(DataType.FLOAT, 128, 1024);
    Matmul.gemm(xb, w, yb, false, true, 1.0, 0.0);
    assertEquals(before + 1, OneDnn.runs(), "a large product runs on oneDNN");
    INDArray want = xb.castTo(DataType.DOUBLE).mmul(w.castTo(DataType.DOUBLE).transpose());
    assertEquals(0.0, want.sub(yb.castTo(DataType.DOUBLE)).amaxNumber().doubleValue(), 1e-3, "large product");
  }

  @Test
  void threadsShareShapesAtOnce() throws Exception {
    Random r = new Random(14);
    int m = 48;
    int n = 96;
    int k = 64;
    INDArray w = rand(r, n, k);
    List<INDArray> xs = new ArrayList<>();
    List<double[][]> want = new ArrayList<>();
    for (int t = 0; t < 6; t++) {
      INDArray x = rand(r, m, k);
      xs.add(x);
      want.add(naive(x, w, Nd4j.zeros(DataType.FLOAT, m, n), false, true, 1, 0));
    }
    ExecutorService pool = Executors.newFixedThreadPool(3);
    try {
      List<Future<INDArray>> outs = new ArrayList<>();
      for (INDArray x : xs) {
        outs.add(pool.submit(() -> {
          INDArray y = Nd4j.zeros(DataType.FLOAT, m, n);
          for (int rep = 0; rep < 20; rep++) {
            Matmul.gemm(x, w, y, false, true, 1.0, 0.0);
          }
          return y;
        }));
      }
      for (int t = 0; t < xs.size(); t++) {
        assertClose(want.get(t), outs.get(t).get(), 1e-5, "thread product " + t);
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
