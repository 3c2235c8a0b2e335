package ai.lathe.model.gen;

import ai.lathe.model.nn.Buf;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks one token from a row of logits, as transformers' warpers do: greedy is the first maximum
 * (torch.argmax); otherwise z/temperature, keep the top-k (ties with the k-th kept), keep the
 * smallest most-probable set whose mass reaches top-p (a token stays while the mass strictly
 * before it is below top_p, so the best token always stays), then draw from the renormalised softmax.
 */
final class Sampler {
  private Sampler() {}

  static int argmax(Buf z, int off, int vocab) {
    int best = 0;
    double bv = z.get(off);
    for (int i = 1; i < vocab; i++) {
      double v = z.get(off + i);
      if (v > bv) {
        bv = v;
        best = i;
      }
    }
    return best;
  }

  static int pick(Buf z, int off, int vocab, Sampling s, SplittableRandom rng) {
    if (s.isGreedy()) {
      return argmax(z, off, vocab);
    }
    double[] x = new double[vocab];
    for (int i = 0; i < vocab; i++) {
      x[i] = z.get(off + i) / s.temperature();
    }
    return draw(x, s.topK(), s.topP(), rng.nextDouble());
  }

  /** The token drawn with uniform u in [0, 1) from the filtered softmax of scaled logits x (modified). */
  static int draw(double[] x, int topK, double topP, double u) {
    int vocab = x.length;
    double max = Double.NEGATIVE_INFINITY;
    for (double v : x) {
      max = Math.max(max, v);
    }
    if (topK > 0 && topK < vocab) {
      double[] sorted = x.clone();
      Arrays.sort(sorted);
      double kth = sorted[vocab - topK];
      for (int i = 0; i < vocab; i++) {
        if (x[i] < kth) {
          x[i] = Double.NEGATIVE_INFINITY;
        }
      }
    }
    double sum = 0;
    double[] p = new double[vocab];
    for (int i = 0; i < vocab; i++) {
      p[i] = Math.exp(x[i] - max);
      sum += p[i];
    }
    if (topP < 1) {
      // descending probability, equal ones by index: (float bits of p, ~index) sorted as longs
      long[] order = new long[vocab];
      for (int i = 0; i < vocab; i++) {
        order[i] = ((long) Float.floatToIntBits((float) p[i]) << 32) | (Integer.MAX_VALUE - i);
      }
      Arrays.sort(order);
      double before = 0;
      for (int j = vocab - 1; j >= 0; j--) {
        int i = Integer.MAX_VALUE - (int) (order[j] & 0xFFFFFFFFL);
        double pi = p[i] / sum;
        if (before >= topP) {
          p[i] = 0;
        }
        before += pi;
      }
      sum = 0;
      for (double v : p) {
        sum += v;
      }
    }
    double target = u * sum;
    double acc = 0;
    int lastKept = -1;
    for (int i = 0; i < vocab; i++) {
      if (p[i] > 0) {
        acc += p[i];
        lastKept = i;
        if (acc > target) {
          return i;
        }
      }
    }
    return lastKept; // rounding at the very end of the cumulative sum
  }
}
