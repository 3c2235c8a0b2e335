package ai.lathe.model.gen;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.nn.Buf;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * One sequence's rotated keys and values for every layer, per key/value head (grouped-query
 * attention caches kv heads, never the repeated query heads), on the heap in the engine's precision.
 * Keys are stored transposed, [kvHeads, headDim, capacity], and values [kvHeads, capacity, headDim],
 * so both products of attention run over contiguous memory (loops the JIT vectorises).
 */
final class KvCache {
  final int capacity;
  final int kvHeads;
  final int headDim;
  final float[][] kf; // [layers][kvHeads·headDim·capacity] keys, transposed (float engine)
  final float[][] vf; // [layers][kvHeads·capacity·headDim]
  final double[][] kd; // the same in double (double engine)
  final double[][] vd;
  /** Positions written so far (the next token's position). */
  int length;

  KvCache(LlamaConfig c, int capacity, DataType dt) {
    this.capacity = capacity;
    this.kvHeads = c.numKvHeads();
    this.headDim = c.headDim();
    int n = kvHeads * headDim * capacity;
    boolean f = dt != DataType.DOUBLE;
    kf = f ? new float[c.numLayers()][n] : null;
    vf = f ? new float[c.numLayers()][n] : null;
    kd = f ? null : new double[c.numLayers()][n];
    vd = f ? null : new double[c.numLayers()][n];
  }

  /** Offset of key (kv head h, dimension i, position 0). */
  int keyRow(int h, int i) {
    return (h * headDim + i) * capacity;
  }

  /** Offset of value (kv head h, position t, dimension 0). */
  int valueRow(int h, int t) {
    return (h * capacity + t) * headDim;
  }

  /** Stores row r of the [n, kvHeads·headDim] projections as position pos of layer l. */
  void put(int l, Buf srcK, Buf srcV, int r, int pos) {
    if (pos >= capacity) {
      throw new IllegalStateException("kv cache full: position " + pos + " of " + capacity);
    }
    int w = kvHeads * headDim;
    for (int h = 0; h < kvHeads; h++) {
      for (int i = 0; i < headDim; i++) {
        int src = r * w + h * headDim + i;
        int kAt = keyRow(h, i) + pos;
        int vAt = valueRow(h, pos) + i;
        if (kf != null) {
          kf[l][kAt] = (float) srcK.get(src);
          vf[l][vAt] = (float) srcV.get(src);
        } else {
          kd[l][kAt] = srcK.get(src);
          vd[l][vAt] = srcV.get(src);
        }
      }
    }
  }
}
