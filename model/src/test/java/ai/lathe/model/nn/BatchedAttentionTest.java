package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * fp32 attention on oneDNN's batched matmul (every head's block product in one call) against the
 * naive double-precision twin: grouped-query heads, batch 2, sliding windows, packed rows, blocks
 * that cross and do not cross the sequence, on one and two threads, every output pre-filled with
 * NaN; that oneDNN really ran the products; and that the per-head path still runs when it is off.
 */
class BatchedAttentionTest {
  private static final int B = 2;
  private static final int H = 4;
  private static final int KV = 2;
  private static final int HD = 5;

  @AfterEach
  void restore() {
    Matmul.setOneDnn(true);
  }

  private static final class Run {
    final DataType d;
    final int t;
    final Buf q;
    final Buf k;
    final Buf v;
    final Buf c;
    final Buf p;
    final Buf o;
    final Buf dq;
    final Buf dk;
    final Buf dv;
    final Buf dp;

    Run(DataType d, int t, long seed) {
      this.d = d;
      this.t = t;
      Random r = new Random(seed);
      q = rand(r, (long) B * H * t, HD);
      k = rand(r, (long) B * KV * t, HD);
      v = rand(r, (long) B * KV * t, HD);
      c = rand(r, (long) B * H * t, HD);
      p = nan((long) B * H * t, t);
      o = nan((long) B * H * t, HD);
      dq = nan((long) B * H * t, HD);
      dk = nan((long) B * KV * t, HD);
      dv = nan((long) B * KV * t, HD);
      dp = nan((long) B * H * t, t);
    }

    private Buf rand(Random r, long rows, long cols) {
      Buf b = Buf.zeros(d, rows, cols);
      for (int i = 0; i < b.length(); i++) {
        b.set(i, r.nextGaussian());
      }
      return b;
    }

    private Buf nan(long rows, long cols) {
      Buf b = Buf.zeros(d, rows, cols);
      for (int i = 0; i < b.length(); i++) {
        b.set(i, Double.NaN);
      }
      return b;
    }

    void run(Attention a, int[] pos) {
      a.forward(a.queries(o.arr), a.queries(p.arr), p, a.queries(q.arr), a.keys(k.arr), a.keys(v.arr), pos);
      a.backward(a.queries(dq.arr), a.keys(dk.arr), a.keys(dv.arr), a.queries(dp.arr), dp, a.queries(c.arr),
          a.queries(p.arr), p, a.queries(q.arr), a.keys(k.arr), a.keys(v.arr), pos);
    }

    void run(FullAttention a, int[] pos) {
      for (Buf x : new Buf[] {p, dp}) { // the twin reads every column
        for (int i = 0; i < x.length(); i++) {
          x.set(i, 0);
        }
      }
      a.forward(a.queries(o.arr), a.queries(p.arr), p, a.queries(q.arr), a.keys(k.arr), a.keys(v.arr), pos);
      a.backward(a.queries(dq.arr), a.keys(dk.arr), a.keys(dv.arr), a.queries(dp.arr), dp, a.queries(c.arr),
          a.queries(p.arr), p, a.queries(q.arr), a.keys(k.arr), a.keys(v.arr), pos);
    }
  }

  private static int[] packed(int t) {
    return BlockedAttentionTest.packed(B, t);
  }

  private static void close(String what, Buf want, Buf got) {
    for (int i = 0; i < want.length(); i++) {
      double w = want.get(i);
      assertEquals(w, got.get(i), 2e-5 * (1 + Math.abs(w)), what + "[" + i + "]");
    }
  }

  /** Runs one configuration on fp32 and returns how many oneDNN products it took. */
  private static long matches(int t, int window, int block, int[] pos) {
    Run want = new Run(DataType.DOUBLE, t, 17);
    want.run(new FullAttention(B, t, H, KV, HD, window), pos);
    Run got = new Run(DataType.FLOAT, t, 17);
    long before = OneDnn.runs();
    got.run(new Attention(B, t, H, KV, HD, window, block), pos);
    long ran = OneDnn.runs() - before;
    String tag = " (t " + t + ", window " + window + ", block " + block + ", packed " + (pos != null) + ")";
    close("o" + tag, want.o, got.o);
    close("dq" + tag, want.dq, got.dq);
    close("dk" + tag, want.dk, got.dk);
    close("dv" + tag, want.dv, got.dv);
    return ran;
  }

  @Test
  void batchedEqualsTheTwinAndRunsOnOneDnn() {
    int prev = Par.threads();
    try {
      for (int threads : new int[] {1, 2}) {
        Par.setThreads(threads);
        for (int t : new int[] {7, 20}) {
          for (int block : new int[] {1, 3, 7, 128}) {
            int blocks = (t + block - 1) / block;
            for (int[] wp : new int[][] {{0, 0}, {3, 0}, {0, 1}, {2, 1}}) {
              long ran = matches(t, wp[0], block, wp[1] == 1 ? packed(t) : null);
              assertTrue(ran >= 6L * blocks, "oneDNN ran " + ran + " products for " + blocks + " blocks");
            }
          }
        }
      }
    } finally {
      Par.setThreads(prev);
    }
  }

  @Test
  void perHeadPathWhenOneDnnIsOff() {
    Matmul.setOneDnn(false);
    long before = OneDnn.runs();
    matches(20, 0, 3, packed(20));
    assertEquals(before, OneDnn.runs(), "with oneDNN off no product may run on it");
  }
}
