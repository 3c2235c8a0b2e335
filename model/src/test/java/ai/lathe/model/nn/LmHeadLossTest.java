package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The chunked head + NLL against a naive double-precision twin and finite differences. */
class LmHeadLossTest {
  static final int V = 13;
  static final int D = 5;
  static final int M = 7;

  static INDArray random(DataType dt, long seed, long... shape) {
    Random r = new Random(seed);
    INDArray a = Nd4j.create(dt, shape);
    for (long i = 0; i < a.length(); i++) {
      a.putScalar(i, r.nextGaussian());
    }
    return a;
  }

  static int[] targets() {
    Random r = new Random(9);
    int[] t = new int[M];
    for (int i = 0; i < M; i++) {
      t[i] = r.nextInt(V);
    }
    return t;
  }

  /** Σ_r wt_r·nll_r over the rows that have a weight: the weighted loss of the engine's per-row NLL. */
  static double weighted(double[] nll, double[] wt) {
    double sum = 0;
    for (int r = 0; r < wt.length; r++) {
      sum += wt[r] * nll[r];
    }
    return sum;
  }

  /** (loss(a + h) − loss(a − h)) / 2h at entry a[i][k], h = 1e-6; a[i][k] is restored. */
  static double centralDifference(double[][] a, int i, int k, DoubleSupplier loss) {
    double h = 1e-6;
    double o = a[i][k];
    a[i][k] = o + h;
    double lp = loss.getAsDouble();
    a[i][k] = o - h;
    double lm = loss.getAsDouble();
    a[i][k] = o;
    return (lp - lm) / (2 * h);
  }

  /**
   * The double-precision case: head w [V, D] (seed 1), input x [M, D] (seed 2), targets, row
   * weights, and w, x as double[][] for the naive twin (perturbed in place by the differences).
   */
  record Case(INDArray w, INDArray x, int[] t, double[] wt, double[][] wa, double[][] xa) {
    static Case make() {
      INDArray w = random(DataType.DOUBLE, 1, V, D);
      INDArray x = random(DataType.DOUBLE, 2, M, D);
      return new Case(w, x, targets(), new double[] {0.5, 1.0, 1.5, 0.2, 0.9, 1.1, 0.3}, w.toDoubleMatrix(),
          x.toDoubleMatrix());
    }

    /** The naive loss at the current wa, xa. */
    double naiveLoss() {
      return naive(wa, xa, t, wt);
    }

    /** Every entry of dx equals the central difference of the naive loss in x (1e-7); where prefixes the message. */
    void assertDxIsTheNaiveGradient(INDArray dx, String where) {
      for (int r = 0; r < M; r++) {
        for (int k = 0; k < D; k++) {
          assertEquals(centralDifference(xa, r, k, this::naiveLoss), dx.getDouble(r, k), 1e-7,
              where + "dx[" + r + "," + k + "]");
        }
      }
    }
  }

  /** Σ_r w_r·(log Σ_v exp(x_r·W_v) − x_r·W_t), by loops over doubles. */
  static double naive(double[][] w, double[][] x, int[] t, double[] wt) {
    double loss = 0;
    for (int r = 0; r < x.length; r++) {
      double[] z = new double[w.length];
      double max = Double.NEGATIVE_INFINITY;
      for (int v = 0; v < w.length; v++) {
        for (int k = 0; k < x[r].length; k++) {
          z[v] += x[r][k] * w[v][k];
        }
        max = Math.max(max, z[v]);
      }
      double s = 0;
      for (double zv : z) {
        s += Math.exp(zv - max);
      }
      loss += wt[r] * (max + Math.log(s) - z[t[r]]);
    }
    return loss;
  }

  @Test
  void chunkedEqualsTheNaiveLossAndFiniteDifferences() {
    Case c = Case.make();
    LmHeadLoss loss = new LmHeadLoss(V, D, 3, DataType.DOUBLE); // chunks of 3, 3, 1
    double[] nll = loss.forward(new DenseLinear(c.w()), c.x(), M, c.t());
    assertEquals(c.naiveLoss(), weighted(nll, c.wt()), 1e-7); // FastExp: relative error below 1e-8
    INDArray dx = Nd4j.zeros(DataType.DOUBLE, M, D);
    double[][] dw = new double[V][D];
    int[] chunks = {0};
    loss.backward(new DenseLinear(c.w()), c.x(), M, c.t(), c.wt(), dx, (dz, xc) -> {
      chunks[0]++;
      INDArray g = dz.transpose().mmul(xc); // dW += dzᵀ·x
      for (int v = 0; v < V; v++) {
        for (int k = 0; k < D; k++) {
          dw[v][k] += g.getDouble(v, k);
        }
      }
    });
    assertEquals(3, chunks[0]);
    c.assertDxIsTheNaiveGradient(dx, "");
    for (int v = 0; v < V; v++) {
      for (int k = 0; k < D; k++) {
        assertEquals(centralDifference(c.wa(), v, k, c::naiveLoss), dw[v][k], 1e-7, "dW[" + v + "," + k + "]");
      }
    }
  }

  /** In float, a large vocabulary in chunks of 5 rows gives the one-chunk loss and input gradient. */
  @Test
  void chunkedEqualsOneChunkInFloat() {
    int vocab = 5000;
    int m = 23;
    INDArray w = random(DataType.FLOAT, 3, vocab, D).muli(0.5);
    INDArray x = random(DataType.FLOAT, 4, m, D);
    Random r = new Random(5);
    int[] t = new int[m];
    double[] wt = new double[m];
    for (int i = 0; i < m; i++) {
      t[i] = r.nextInt(vocab);
      wt[i] = 1.0 / m;
    }
    LmHeadLoss whole = new LmHeadLoss(vocab, D, m, DataType.FLOAT);
    LmHeadLoss chunked = new LmHeadLoss(vocab, D, 5, DataType.FLOAT);
    assertTrue(chunked.bytes() < whole.bytes() / 4);
    double[] a = whole.forward(new DenseLinear(w), x, m, t);
    double[] b = chunked.forward(new DenseLinear(w), x, m, t);
    for (int i = 0; i < m; i++) {
      assertEquals(a[i], b[i], 1e-6, "row " + i);
    }
    INDArray da = Nd4j.zeros(DataType.FLOAT, m, D);
    INDArray db = Nd4j.zeros(DataType.FLOAT, m, D);
    whole.backward(new DenseLinear(w), x, m, t, wt, da, null);
    chunked.backward(new DenseLinear(w), x, m, t, wt, db, null);
    for (long i = 0; i < da.length(); i++) {
      assertEquals(da.getDouble(i), db.getDouble(i), 1e-6);
    }
    assertTrue(da.norm2Number().doubleValue() > 1e-3);
  }

  /**
   * The same checks through the ND4J ops (engine.kernels nd4j: chunks recomputed, and one chunk
   * reused): no host element access, one copy back per forward (its rows' NLL).
   */
  @Test
  void theNd4jOpsPassTheSameChecksWithoutHostAccess() {
    Kernels.use(Kernels.ND4J);
    Buf.ACCESSES.set(0);
    HostCopies.reset();
    Buf.counting = true;
    try {
      chunkedEqualsTheNaiveLossAndFiniteDifferences();
      chunkedEqualsOneChunkInFloat();
    } finally {
      Buf.counting = false;
      Kernels.use(null);
    }
    assertEquals(0, Buf.ACCESSES.get(), "host element accesses");
    assertEquals(3, HostCopies.COPIES.get(), "one copy back per forward");
    assertEquals(M + 23 + 23, HostCopies.ELEMENTS.get(), "each forward's rows");
  }

  /** A FrozenLinear that counts its input-gradient products. */
  static final class Counting implements FrozenLinear {
    final DenseLinear inner;
    int backwardCalls;

    Counting(INDArray w) {
      inner = new DenseLinear(w);
    }

    @Override public int in() { return inner.in(); }
    @Override public int out() { return inner.out(); }
    @Override public void forward(INDArray x, INDArray y) { inner.forward(x, y); }
    @Override public INDArray dense() { return inner.dense(); }
    @Override public long bytes() { return inner.bytes(); }

    @Override
    public void backwardInput(INDArray dy, INDArray dx, double beta) {
      backwardCalls++;
      inner.backwardInput(dy, dx, beta);
    }
  }

  /**
   * A training forward (prepareBackward) computes the input gradient chunk by chunk, and backward
   * only weights it: same dx as finite differences of the naive loss, no product in backward.
   */
  @Test
  void preparedBackwardMatchesFiniteDifferencesWithoutAProduct() {
    Case c = Case.make();
    for (int chunk : new int[] {3, M}) { // several chunks, and one
      LmHeadLoss loss = new LmHeadLoss(V, D, chunk, DataType.DOUBLE);
      Counting head = new Counting(c.w());
      double[] nll = loss.forward(head, c.x(), M, c.t(), true);
      assertEquals(c.naiveLoss(), weighted(nll, c.wt()), 1e-7);
      assertEquals((M + chunk - 1) / chunk, head.backwardCalls, "one input-gradient product per chunk in forward");
      INDArray dx = Nd4j.zeros(DataType.DOUBLE, M, D);
      loss.backward(head, c.x(), M, c.t(), c.wt(), dx, null);
      assertEquals((M + chunk - 1) / chunk, head.backwardCalls, "no product in backward");
      c.assertDxIsTheNaiveGradient(dx, "chunk " + chunk + " ");
    }
  }

  /** A prepared forward followed by a backward with a hook (a trained head) recomputes: same dx, dz handed out. */
  @Test
  void preparedForwardStillServesAHook() {
    Case c = Case.make();
    LmHeadLoss plain = new LmHeadLoss(V, D, 3, DataType.DOUBLE);
    LmHeadLoss prepared = new LmHeadLoss(V, D, 3, DataType.DOUBLE);
    plain.forward(new DenseLinear(c.w()), c.x(), M, c.t(), false);
    prepared.forward(new DenseLinear(c.w()), c.x(), M, c.t(), true);
    INDArray da = Nd4j.zeros(DataType.DOUBLE, M, D);
    INDArray db = Nd4j.zeros(DataType.DOUBLE, M, D);
    int[] chunks = {0};
    plain.backward(new DenseLinear(c.w()), c.x(), M, c.t(), c.wt(), da, null);
    prepared.backward(new DenseLinear(c.w()), c.x(), M, c.t(), c.wt(), db, (dz, xc) -> chunks[0]++);
    assertEquals(3, chunks[0]);
    for (long i = 0; i < da.length(); i++) {
      assertEquals(da.getDouble(i), db.getDouble(i), 1e-12);
    }
  }

  @Test
  void mismatchedHeadOrBackwardIsRefused() {
    LmHeadLoss loss = new LmHeadLoss(V, D, 3, DataType.DOUBLE);
    INDArray x = random(DataType.DOUBLE, 2, M, D);
    assertThrows(IllegalArgumentException.class,
        () -> loss.forward(new DenseLinear(random(DataType.DOUBLE, 1, V + 1, D)), x, M, targets()));
    assertThrows(IllegalArgumentException.class, () -> loss.backward(new DenseLinear(random(DataType.DOUBLE, 1, V, D)),
        x, M, targets(), new double[M], Nd4j.zeros(DataType.DOUBLE, M, D), null));
  }
}
