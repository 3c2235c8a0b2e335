package ai.lathe.model.gen;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.nn.Buf;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * One sequence's rotated keys and values for every layer, held per key/value head (grouped-query
 * attention caches kv heads, never the repeated query heads): k[l] and v[l] are [kvHeads, capacity, headDim].
 */
final class KvCache {
  final int capacity;
  final int kvHeads;
  final int headDim;
  final Buf[] k; // [layers][kvHeads·capacity·headDim]
  final Buf[] v;
  /** Positions written so far (the next token's position). */
  int length;

  KvCache(LlamaConfig c, int capacity, DataType dt) {
    this.capacity = capacity;
    this.kvHeads = c.numKvHeads();
    this.headDim = c.headDim();
    this.k = new Buf[c.numLayers()];
    this.v = new Buf[c.numLayers()];
    for (int l = 0; l < k.length; l++) {
      k[l] = Buf.zeros(dt, (long) kvHeads * capacity * headDim);
      v[l] = Buf.zeros(dt, (long) kvHeads * capacity * headDim);
    }
  }

  /** Offset of (kv head h, position t) in k[l] / v[l]. */
  int at(int h, int t) {
    return (h * capacity + t) * headDim;
  }

  /** Stores row r of the [n, kvHeads·headDim] projections src as position pos of layer l. */
  void put(int l, Buf srcK, Buf srcV, int r, int pos) {
    if (pos >= capacity) {
      throw new IllegalStateException("kv cache full: position " + pos + " of " + capacity);
    }
    int w = kvHeads * headDim;
    for (int h = 0; h < kvHeads; h++) {
      int dst = at(h, pos);
      int src = r * w + h * headDim;
      for (int i = 0; i < headDim; i++) {
        k[l].set(dst + i, srcK.get(src + i));
        v[l].set(dst + i, srcV.get(src + i));
      }
    }
  }
}
