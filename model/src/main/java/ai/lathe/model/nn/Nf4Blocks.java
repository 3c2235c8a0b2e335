package ai.lathe.model.nn;

import org.nd4j.linalg.api.buffer.DataType;

/**
 * Quantises a flattened [out, in] weight to NF4 as its values arrive in slices, so no dense copy of
 * the whole weight is ever held: each block of 64 depends on its own values only (absmax, then the
 * nearest code of x / absmax), so slicing on block boundaries gives the same codes, bit for bit, as
 * quantising the whole weight at once. Double quantisation needs every absmax and runs at the end.
 */
public final class Nf4Blocks {
  private final int out;
  private final int in;
  private final long n; // elements
  private final byte[] packed; // [ceil(n/2)] two codes per byte, first in the high nibble
  private final float[] absmax; // [ceil(n/64)]
  private long done; // elements quantised so far

  public Nf4Blocks(int out, int in) {
    if (out <= 0 || in <= 0) {
      throw new IllegalArgumentException("NF4: shape [" + out + ", " + in + "] is not a matrix");
    }
    this.out = out;
    this.in = in;
    this.n = (long) out * in;
    if ((n + 1) / 2 > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("NF4: [" + out + ", " + in + "] is too large for one code array");
    }
    this.packed = new byte[(int) ((n + 1) / 2)];
    this.absmax = new float[(int) ((n + Nf4.BLOCK - 1) / Nf4.BLOCK)];
  }

  /** Elements still to come. */
  public long remaining() {
    return n - done;
  }

  /**
   * Quantises the next count values src[0, count): a whole number of blocks, except for the last
   * slice of the weight, which ends it.
   */
  public void accept(float[] src, int count) {
    if (count <= 0 || count > remaining() || count > src.length) {
      throw new IllegalArgumentException("NF4: slice of " + count + " values, " + remaining() + " remain");
    }
    if (count % Nf4.BLOCK != 0 && count != remaining()) {
      throw new IllegalArgumentException("NF4: slice of " + count + " values is not a whole number of blocks of "
          + Nf4.BLOCK + " and does not end the weight");
    }
    long first = done;
    int blocks = (count + Nf4.BLOCK - 1) / Nf4.BLOCK;
    Par.rows(blocks, (lo, hi) -> {
      for (int b = lo; b < hi; b++) {
        quantizeBlock(src, b * Nf4.BLOCK, Math.min(count, (b + 1) * Nf4.BLOCK), first);
      }
    });
    done += count;
  }

  /**
   * One block: src[from, to) are elements first + from .. first + to of the weight. Rule (bitsandbytes):
   * absmax = max |x|; code = nearest NF4 value to x · (1 / absmax); a pad element of an odd count is 0.
   */
  private void quantizeBlock(float[] src, int from, int to, long first) {
    float m = 0;
    for (int i = from; i < to; i++) {
      m = Math.max(m, Math.abs(src[i]));
    }
    absmax[(int) ((first + from) / Nf4.BLOCK)] = m;
    float inv = m == 0 ? 0 : 1.0f / m;
    for (int i = from; i < to; i += 2) {
      int hi = Nf4.nearest4(src[i] * inv);
      int lw = Nf4.nearest4(i + 1 < to ? src[i + 1] * inv : 0f);
      packed[(int) ((first + i) / 2)] = (byte) (hi << 4 | lw);
    }
  }

  /** The quantised weight, once every value has arrived (optionally double-quantising the absmax). */
  public Nf4Linear finish(boolean doubleQuant, DataType dt, String what) {
    if (remaining() != 0) {
      throw new IllegalStateException(what + ": NF4 quantisation stopped with " + remaining() + " of " + n
          + " values missing");
    }
    if (!doubleQuant) {
      return new Nf4Linear(new Nf4Linear.State(out, in, packed, absmax, null, null, null, 0f), dt, what);
    }
    return doubleQuantize(out, in, packed, absmax, dt, what);
  }

  /**
   * bitsandbytes' double quantisation of the block scales: subtract their mean (offset), then per
   * block of 256 scales an fp32 absmax and 8-bit codes of the dynamic map (nearest value).
   */
  static Nf4Linear doubleQuantize(int out, int in, byte[] packed, float[] absmax, DataType dt, String what) {
    int blocks = absmax.length;
    double sum = 0;
    for (float a : absmax) {
      sum += a;
    }
    float offset = (float) (sum / blocks);
    float[] map = Nf4.DYNAMIC;
    int nested = (blocks + Nf4.NESTED_BLOCK - 1) / Nf4.NESTED_BLOCK;
    float[] nestedAbsmax = new float[nested];
    byte[] codes = new byte[blocks];
    for (int b = 0; b < nested; b++) {
      int lo = b * Nf4.NESTED_BLOCK;
      int hi = Math.min(blocks, lo + Nf4.NESTED_BLOCK);
      float m = 0;
      for (int i = lo; i < hi; i++) {
        m = Math.max(m, Math.abs(absmax[i] - offset));
      }
      nestedAbsmax[b] = m;
      float inv = m == 0 ? 0 : 1.0f / m; // bitsandbytes multiplies by the reciprocal
      for (int i = lo; i < hi; i++) {
        codes[i] = (byte) Nf4.nearest8(map, (absmax[i] - offset) * inv);
      }
    }
    return new Nf4Linear(new Nf4Linear.State(out, in, packed, null, codes, nestedAbsmax, map, offset), dt, what);
  }
}
