package ai.lathe.model.gen;

import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.Par;

/**
 * Attention of new query rows against a KV cache: row r (position p) of head h reads kv head
 * h / (heads/kvHeads), as transformers' repeat_kv does, over positions [first, p] where first is 0,
 * or p − window + 1 with Mistral's sliding window. out = softmax(q·Kᵀ/√hd)·V, in the engine's
 * precision with the softmax in double. Both products are axpy loops over the cache's contiguous rows.
 */
final class CachedAttention {
  private CachedAttention() {}

  static void forward(Buf out, Buf q, KvCache[] cache, int layer, int[] pos, int n, int heads, int kvHeads,
      int hd, int window) {
    int group = heads / kvHeads;
    Par.rows(n * heads, (lo, hi) -> {
      Scratch s = new Scratch(hd);
      for (int rh = lo; rh < hi; rh++) {
        int r = rh / heads;
        int h = rh % heads;
        int last = pos[r];
        int first = window > 0 ? Math.max(0, last - window + 1) : 0;
        int qo = (r * heads + h) * hd;
        if (cache[r].kf != null) {
          headF32(s, out, q, qo, cache[r], layer, h / group, first, last - first + 1, hd);
        } else {
          headF64(s, out, q, qo, cache[r], layer, h / group, first, last - first + 1, hd);
        }
      }
    });
  }

  /** Per-thread buffers, grown to the longest context seen. */
  private static final class Scratch {
    float[] sf = new float[0];
    double[] sd = new double[0];
    final float[] accF;
    final double[] accD;

    Scratch(int hd) {
      accF = new float[hd];
      accD = new double[hd];
    }

    void fit(int len) {
      if (sd.length < len) {
        sd = new double[Math.max(len, 2 * sd.length)];
        sf = new float[sd.length];
      }
    }
  }

  private static void headF32(Scratch s, Buf out, Buf q, int qo, KvCache c, int l, int kvh, int first, int len,
      int hd) {
    s.fit(len);
    float[] sc = s.sf;
    float[] k = c.kf[l];
    float[] v = c.vf[l];
    java.util.Arrays.fill(sc, 0, len, 0f);
    float scale = (float) (1.0 / Math.sqrt(hd));
    // scores[t] = Σ_i q[i]·K[i][first + t] / √hd
    for (int i = 0; i < hd; i++) {
      float qi = (float) q.get(qo + i) * scale;
      int base = c.keyRow(kvh, i) + first;
      for (int t = 0; t < len; t++) {
        sc[t] += qi * k[base + t];
      }
    }
    double max = Double.NEGATIVE_INFINITY;
    for (int t = 0; t < len; t++) {
      max = Math.max(max, sc[t]);
    }
    double sum = 0;
    for (int t = 0; t < len; t++) {
      double e = Math.exp(sc[t] - max);
      s.sd[t] = e;
      sum += e;
    }
    float[] acc = s.accF;
    java.util.Arrays.fill(acc, 0f);
    // out = Σ_t p[t]·V[first + t]
    for (int t = 0; t < len; t++) {
      float pt = (float) (s.sd[t] / sum);
      int base = c.valueRow(kvh, first + t);
      for (int i = 0; i < hd; i++) {
        acc[i] += pt * v[base + i];
      }
    }
    for (int i = 0; i < hd; i++) {
      out.set(qo + i, acc[i]);
    }
  }

  private static void headF64(Scratch s, Buf out, Buf q, int qo, KvCache c, int l, int kvh, int first, int len,
      int hd) {
    s.fit(len);
    double[] sc = s.sd;
    double[] k = c.kd[l];
    double[] v = c.vd[l];
    java.util.Arrays.fill(sc, 0, len, 0.0);
    double scale = 1.0 / Math.sqrt(hd);
    for (int i = 0; i < hd; i++) {
      double qi = q.get(qo + i) * scale;
      int base = c.keyRow(kvh, i) + first;
      for (int t = 0; t < len; t++) {
        sc[t] += qi * k[base + t];
      }
    }
    double max = Double.NEGATIVE_INFINITY;
    for (int t = 0; t < len; t++) {
      max = Math.max(max, sc[t]);
    }
    double sum = 0;
    for (int t = 0; t < len; t++) {
      sc[t] = Math.exp(sc[t] - max);
      sum += sc[t];
    }
    double[] acc = s.accD;
    java.util.Arrays.fill(acc, 0.0);
    for (int t = 0; t < len; t++) {
      double pt = sc[t] / sum;
      int base = c.valueRow(kvh, first + t);
      for (int i = 0; i < hd; i++) {
        acc[i] += pt * v[base + i];
      }
    }
    for (int i = 0; i < hd; i++) {
      out.set(qo + i, acc[i]);
    }
  }
}
