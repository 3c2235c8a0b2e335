package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The blocked causal attention against its naive twin (all T x T scores, then masked), with
 * blocks small enough that rows cross several block edges: causal, GQA, sliding window and
 * packed rows; the skipped key blocks are never written; finite differences through the blocks.
 */
class BlockedAttentionTest {
  private static final DataType D = DataType.DOUBLE;
  private static final int B = 2;
  private static final int T = 7;
  private static final int H = 4;
  private static final int KV = 2;
  private static final int HD = 3;

  /** Inputs and outputs of one attention call, in the flat layouts the engine uses. */
  private static final class Run {
    final Buf q;
    final Buf k;
    final Buf v;
    final Buf c; // upstream gradient dO
    final Buf p = Buf.zeros(D, (long) B * H * T, T);
    final Buf o = Buf.zeros(D, (long) B * H * T, HD);
    final Buf dq = Buf.zeros(D, (long) B * H * T, HD);
    final Buf dk = Buf.zeros(D, (long) B * KV * T, HD);
    final Buf dv = Buf.zeros(D, (long) B * KV * T, HD);
    final Buf dp = Buf.zeros(D, (long) B * H * T, T);

    Run(long seed) {
      Random r = new Random(seed);
      q = LayerGradientTest.rand(r, 1, (long) B * H * T, HD);
      k = LayerGradientTest.rand(r, 1, (long) B * KV * T, HD);
      v = LayerGradientTest.rand(r, 1, (long) B * KV * T, HD);
      c = LayerGradientTest.rand(r, 1, (long) B * H * T, HD);
    }

    void forward(Attention a, int[] pos) {
      a.forward(a.queries(o.arr), a.queries(p.arr), p, a.queries(q.arr), a.keys(k.arr), a.keys(v.arr), pos);
    }

    void backward(Attention a, int[] pos) {
      a.backward(a.queries(dq.arr), a.keys(dk.arr), a.keys(dv.arr), a.queries(dp.arr), dp, a.queries(c.arr),
          a.queries(p.arr), p, a.queries(q.arr), a.keys(k.arr), a.keys(v.arr), pos);
    }

    void forward(FullAttention a, int[] pos) {
      a.forward(a.queries(o.arr), a.queries(p.arr), p, a.queries(q.arr), a.keys(k.arr), a.keys(v.arr), pos);
    }

    void backward(FullAttention a, int[] pos) {
      a.backward(a.queries(dq.arr), a.keys(dk.arr), a.keys(dv.arr), a.queries(dp.arr), dp, a.queries(c.arr),
          a.queries(p.arr), p, a.queries(q.arr), a.keys(k.arr), a.keys(v.arr), pos);
    }
  }

  private static void same(String what, Buf want, Buf got) {
    for (int i = 0; i < want.length(); i++) {
      assertEquals(want.get(i), got.get(i), 1e-12, what + "[" + i + "]");
    }
  }

  /** Two packed examples per row: positions restart at 4. */
  private static int[] packed() {
    return packed(B, T);
  }

  /** The same for b rows of t positions (BatchedAttentionTest's shapes too). */
  static int[] packed(int b, int t) {
    int[] pos = new int[b * t];
    for (int r = 0; r < b; r++) {
      for (int i = 0; i < t; i++) {
        pos[r * t + i] = i < 4 ? i : i - 4;
      }
    }
    return pos;
  }

  private static void matchesTwin(int window, int block, int[] pos) {
    Run want = new Run(7);
    Run got = new Run(7);
    FullAttention full = new FullAttention(B, T, H, KV, HD, window);
    Attention blocked = new Attention(B, T, H, KV, HD, window, block);
    want.forward(full, pos);
    want.backward(full, pos);
    got.forward(blocked, pos);
    for (Buf out : new Buf[] {got.dq, got.dk, got.dv}) { // backward overwrites its outputs
      for (int i = 0; i < out.length(); i++) {
        out.set(i, Double.NaN);
      }
    }
    got.backward(blocked, pos);
    String tag = " (window " + window + ", block " + block + ", packed " + (pos != null) + ")";
    same("o" + tag, want.o, got.o);
    same("p" + tag, want.p, got.p);
    same("dq" + tag, want.dq, got.dq);
    same("dk" + tag, want.dk, got.dk);
    same("dv" + tag, want.dv, got.dv);
  }

  @Test
  void blockedEqualsFullAttention() {
    for (int block : new int[] {1, 2, 3, 7, 128}) {
      matchesTwin(0, block, null);
      matchesTwin(3, block, null);
      matchesTwin(0, block, packed());
      matchesTwin(2, block, packed());
    }
  }

  /** Heads run in parallel (each on one BLAS thread); the query heads of a group share dK/dV. */
  @Test
  void blockedEqualsFullAttentionOnSeveralThreads() {
    int prev = Par.threads();
    try {
      for (int threads : new int[] {2, 3}) {
        Par.setThreads(threads);
        for (int block : new int[] {1, 3, 128}) {
          matchesTwin(0, block, null);
          matchesTwin(2, block, packed());
        }
      }
    } finally {
      Par.setThreads(prev);
    }
  }

  /** Scores of key blocks above the diagonal (and before a sliding window) are never computed. */
  @Test
  void skippedBlocksAreNeverWritten() {
    int block = 2;
    int window = 3;
    Run r = new Run(3);
    for (int i = 0; i < r.p.length(); i++) {
      r.p.set(i, Double.NaN);
    }
    Attention a = new Attention(B, T, H, KV, HD, window, block);
    r.forward(a, null);
    int skipped = 0;
    for (int row = 0; row < B * H * T; row++) {
      int i = row % T;
      int s = i / block * block;
      int e = Math.min(T, s + block);
      int k0 = Math.max(0, s - window + 1);
      for (int j = 0; j < T; j++) {
        double pij = r.p.get(row * T + j);
        if (j >= e || j < k0) {
          assertTrue(Double.isNaN(pij), "p[" + row + ", " + j + "] outside the block was computed");
          skipped++;
        } else {
          assertTrue(Double.isFinite(pij), "p[" + row + ", " + j + "] inside the block");
        }
      }
    }
    assertTrue(skipped > B * H * T * T / 3, "skipped " + skipped);
    for (int i = 0; i < r.o.length(); i++) {
      assertTrue(Double.isFinite(r.o.get(i)), "o[" + i + "]");
    }
  }

  @Test
  void finiteDifferencesAcrossBlocks() {
    int[] pos = packed();
    Run r = new Run(11);
    Attention a = new Attention(B, T, H, KV, HD, 0, 2);
    Supplier<Double> loss = () -> {
      r.forward(a, pos);
      return LayerGradientTest.dot(r.c, r.o);
    };
    loss.get();
    r.backward(a, pos);
    LayerGradientTest.check("blocked dq", r.q, r.dq, loss);
    LayerGradientTest.check("blocked dk", r.k, r.dk, loss);
    LayerGradientTest.check("blocked dv", r.v, r.dv, loss);
  }

  /** The naive twin used above is itself right: finite differences on the full T x T version. */
  @Test
  void twinIsRight() {
    Run r = new Run(5);
    FullAttention a = new FullAttention(B, T, H, KV, HD, 0);
    Supplier<Double> loss = () -> {
      r.forward(a, null);
      return LayerGradientTest.dot(r.c, r.o);
    };
    loss.get();
    r.backward(a, null);
    LayerGradientTest.check("full dk", r.k, r.dk, loss);
  }
}
