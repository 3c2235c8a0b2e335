package ai.lathe.merge;

import java.util.SplittableRandom;

/**
 * The pruning steps of merge methods, as small pure functions on flat tensors:
 * magnitude (TIES's trim: keep the k = floor(density·n) entries of largest |x|, ties to the lower
 * index) and random (DARE: keep each entry with probability density from a seeded stream,
 * rescaling survivors by 1/density).
 */
public final class Sparsify {
  private Sparsify() {}

  public static float[] magnitude(float[] x, double density) {
    if (density >= 1) {
      return x.clone();
    }
    int n = x.length;
    int k = (int) (density * n);
    float[] out = new float[n];
    if (k <= 0) {
      return out;
    }
    float[] mag = new float[n];
    for (int i = 0; i < n; i++) {
      mag[i] = Math.abs(x[i]);
    }
    float t = kthLargest(mag, k);
    int above = 0;
    for (float v : x) {
      if (Math.abs(v) > t) {
        above++;
      }
    }
    int equalLeft = k - above; // entries equal to the threshold that still fit, lowest index first
    for (int i = 0; i < n; i++) {
      float a = Math.abs(x[i]);
      if (a > t || a == t && equalLeft-- > 0) {
        out[i] = x[i];
      }
    }
    return out;
  }

  /** The k-th largest value (1-based) by quickselect; scrambles the array. */
  static float kthLargest(float[] a, int k) {
    int lo = 0;
    int hi = a.length - 1;
    int target = k - 1;
    SplittableRandom rng = new SplittableRandom(1);
    while (lo < hi) {
      float pivot = a[lo + rng.nextInt(hi - lo + 1)];
      int i = lo;
      int j = hi;
      while (i <= j) {
        while (a[i] > pivot) {
          i++;
        }
        while (a[j] < pivot) {
          j--;
        }
        if (i <= j) {
          float tmp = a[i];
          a[i] = a[j];
          a[j] = tmp;
          i++;
          j--;
        }
      }
      if (target <= j) {
        hi = j;
      } else if (target >= i) {
        lo = i;
      } else {
        return a[target];
      }
    }
    return a[target];
  }

  /**
   * TIES's trim and the weighting in place on x[0, n): keeps the k = floor(density·n) entries of
   * largest |x| (ties at the threshold to the lower index, as {@link #magnitude}) and multiplies
   * them by w as (float) (x·w); the rest become 0. The threshold is found by a two-pass radix
   * select on the bits of |x| (for finite floats the order of the bits is the order of |x|), so
   * the cost is linear in n and independent of the data; hist is scratch of {@link #HIST} ints.
   */
  static void magnitudeInPlace(float[] x, int n, double density, double w, int[] hist) {
    int k = density >= 1 ? n : (int) (density * n);
    if (k >= n) {
      scale(x, n, w);
      return;
    }
    if (k <= 0) {
      java.util.Arrays.fill(x, 0, n, 0f);
      return;
    }
    long sel = kthLargestBits(x, n, k, hist);
    int t = (int) (sel >>> 32);
    int equalLeft = (int) sel; // entries equal to the threshold that still fit, lowest index first
    for (int i = 0; i < n; i++) {
      float v = x[i];
      int b = Float.floatToRawIntBits(v) & 0x7fffffff;
      if (b == t) { // rare: a tie with the threshold
        x[i] = equalLeft-- > 0 ? (float) (v * w) : 0f;
      } else { // without a branch: all-ones mask when b > t (both are non-negative ints), else +0
        int keep = (t - b) >> 31;
        x[i] = Float.intBitsToFloat(Float.floatToRawIntBits((float) (v * w)) & keep);
      }
    }
  }

  /** Scratch size for {@link #magnitudeInPlace}: four histograms of 2^15 buckets, or one of 2^16. */
  static final int HIST = 1 << 17;

  /**
   * The bits t of the k-th largest |x| (1-based) over x[0, n) in the high word, and in the low
   * word how many entries equal to t are among the k largest (k minus those above t): a
   * histogram of the high 16 bits picks the bucket holding it, a histogram of the low 16 bits
   * within that bucket picks the value.
   */
  static long kthLargestBits(float[] x, int n, int k, int[] hist) {
    // four interleaved histograms of the high bits (15 of them: the sign is cleared), so that
    // runs of equal buckets do not serialise on one counter; then summed into the first
    int q = 1 << 15;
    java.util.Arrays.fill(hist, 0);
    int i = 0;
    for (; i + 3 < n; i += 4) {
      hist[(Float.floatToRawIntBits(x[i]) & 0x7fffffff) >>> 16]++;
      hist[q + ((Float.floatToRawIntBits(x[i + 1]) & 0x7fffffff) >>> 16)]++;
      hist[2 * q + ((Float.floatToRawIntBits(x[i + 2]) & 0x7fffffff) >>> 16)]++;
      hist[3 * q + ((Float.floatToRawIntBits(x[i + 3]) & 0x7fffffff) >>> 16)]++;
    }
    for (; i < n; i++) {
      hist[(Float.floatToRawIntBits(x[i]) & 0x7fffffff) >>> 16]++;
    }
    for (int b = 0; b < q; b++) {
      hist[b] += hist[q + b] + hist[2 * q + b] + hist[3 * q + b];
    }
    int rank = k; // rank of the wanted value among those not yet passed, from the top
    int hi = q - 1;
    while (hist[hi] < rank) {
      rank -= hist[hi--];
    }
    java.util.Arrays.fill(hist, 0);
    for (i = 0; i < n; i++) {
      int b = Float.floatToRawIntBits(x[i]) & 0x7fffffff;
      if (b >>> 16 == hi) {
        hist[b & 0xffff]++;
      }
    }
    int lo = (1 << 16) - 1;
    while (hist[lo] < rank) {
      rank -= hist[lo--];
    }
    return (long) (hi << 16 | lo) << 32 | rank;
  }

  /** DARE's drop in place on x[0, n), weighted by w: the same seeded stream and arithmetic as {@link #random}. */
  static void randomInPlace(float[] x, int n, double density, long seed, double w) {
    if (density >= 1) {
      scale(x, n, w);
      return;
    }
    SplittableRandom rng = new SplittableRandom(seed);
    double s = 1.0 / density;
    for (int i = 0; i < n; i++) {
      x[i] = rng.nextDouble() < density ? (float) ((float) (x[i] * s) * w) : 0f;
    }
  }

  /** x[i] = (float) (x[i]·w) over x[0, n). */
  static void scale(float[] x, int n, double w) {
    for (int i = 0; i < n; i++) {
      x[i] = (float) (x[i] * w);
    }
  }

  public static float[] random(float[] x, double density, long seed, boolean rescale) {
    if (density >= 1) {
      return x.clone();
    }
    SplittableRandom rng = new SplittableRandom(seed);
    float[] out = new float[x.length];
    double s = rescale ? 1.0 / density : 1.0;
    for (int i = 0; i < x.length; i++) {
      if (rng.nextDouble() < density) {
        out[i] = (float) (x[i] * s);
      }
    }
    return out;
  }
}
