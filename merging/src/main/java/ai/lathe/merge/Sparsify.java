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
