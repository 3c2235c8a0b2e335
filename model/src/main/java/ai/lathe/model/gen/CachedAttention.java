package ai.lathe.model.gen;

import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.Par;

/**
 * Attention of new query rows against a KV cache: row r (position p) of head h reads kv head
 * h / (heads/kvHeads), as transformers' repeat_kv does, over positions [first, p] where first is 0,
 * or p − window + 1 with Mistral's sliding window. out = softmax(q·Kᵀ/√hd)·V, accumulated in double.
 */
final class CachedAttention {
  private CachedAttention() {}

  static void forward(Buf out, Buf q, KvCache[] cache, int layer, int[] pos, int n, int heads, int kvHeads,
      int hd, int window) {
    int group = heads / kvHeads;
    double scale = 1.0 / Math.sqrt(hd);
    Par.rows(n * heads, (lo, hi) -> {
      double[] p = new double[0];
      double[] acc = new double[hd];
      for (int rh = lo; rh < hi; rh++) {
        int r = rh / heads;
        int h = rh % heads;
        KvCache kc = cache[r];
        Buf k = kc.k[layer];
        Buf v = kc.v[layer];
        int kvh = h / group;
        int last = pos[r];
        int first = window > 0 ? Math.max(0, last - window + 1) : 0;
        int len = last - first + 1;
        if (p.length < len) {
          p = new double[Math.max(len, 2 * p.length)];
        }
        int qo = (r * heads + h) * hd;
        double max = Double.NEGATIVE_INFINITY;
        for (int t = 0; t < len; t++) {
          int ko = kc.at(kvh, first + t);
          double dot = 0;
          for (int i = 0; i < hd; i++) {
            dot += q.get(qo + i) * k.get(ko + i);
          }
          p[t] = dot * scale;
          max = Math.max(max, p[t]);
        }
        double sum = 0;
        for (int t = 0; t < len; t++) {
          p[t] = Math.exp(p[t] - max);
          sum += p[t];
        }
        java.util.Arrays.fill(acc, 0.0);
        for (int t = 0; t < len; t++) {
          int vo = kc.at(kvh, first + t);
          double pt = p[t] / sum;
          for (int i = 0; i < hd; i++) {
            acc[i] += pt * v.get(vo + i);
          }
        }
        for (int i = 0; i < hd; i++) {
          out.set(qo + i, acc[i]);
        }
      }
    });
  }
}
