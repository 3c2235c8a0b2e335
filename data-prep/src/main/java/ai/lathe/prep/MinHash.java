package ai.lathe.prep;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/**
 * MinHash signatures over character 5-gram shingles of lower-cased text, and the LSH banding
 * that turns them into candidate near-duplicate buckets (Broder 1997; Leskovec, Rajaraman &
 * Ullman, Mining of Massive Datasets, ch. 3). Pure functions, seeded: the same text always gets
 * the same signature.
 */
public final class MinHash {
  public static final int SHINGLE = 5;
  private final int numPerm;
  private final long[] a;
  private final long[] b;

  public MinHash(int numPerm, long seed) {
    this.numPerm = numPerm;
    this.a = new long[numPerm];
    this.b = new long[numPerm];
    java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
    for (int i = 0; i < numPerm; i++) {
      a[i] = r.nextLong() | 1L;
      b[i] = r.nextLong();
    }
  }

  public static Set<Long> shingles(String text) {
    String t = text.toLowerCase(Locale.ROOT).replaceAll("\\s+", " ");
    Set<Long> out = new HashSet<>();
    int[] cps = t.codePoints().toArray();
    if (cps.length < SHINGLE) {
      out.add(hash64(t.getBytes(StandardCharsets.UTF_8)));
      return out;
    }
    for (int i = 0; i + SHINGLE <= cps.length; i++) {
      out.add(hash64(new String(cps, i, SHINGLE).getBytes(StandardCharsets.UTF_8)));
    }
    return out;
  }

  /** FNV-1a 64 followed by a finaliser (splitmix64). */
  static long hash64(byte[] bytes) {
    long h = 0xcbf29ce484222325L;
    for (byte x : bytes) {
      h ^= x & 0xff;
      h *= 0x100000001b3L;
    }
    return mix(h);
  }

  static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  public long[] signature(String text) {
    long[] sig = new long[numPerm];
    Arrays.fill(sig, Long.MAX_VALUE);
    for (long s : shingles(text)) {
      for (int i = 0; i < numPerm; i++) {
        long v = mix(a[i] * s + b[i]);
        if (Long.compareUnsigned(v, sig[i]) < 0) {
          sig[i] = v;
        }
      }
    }
    return sig;
  }

  /** The share of equal positions: an unbiased estimate of the Jaccard similarity. */
  public static double similarity(long[] x, long[] y) {
    int eq = 0;
    for (int i = 0; i < x.length; i++) {
      eq += x[i] == y[i] ? 1 : 0;
    }
    return eq / (double) x.length;
  }

  /** Rows per band for numPerm hashes whose LSH threshold (1/b)^(1/r) is closest to the target. */
  public static int rowsPerBand(int numPerm, double threshold) {
    int best = 1;
    double bestErr = Double.MAX_VALUE;
    for (int r = 1; r <= numPerm; r++) {
      if (numPerm % r != 0) {
        continue;
      }
      double t = Math.pow(1.0 / (numPerm / r), 1.0 / r);
      if (Math.abs(t - threshold) < bestErr) {
        bestErr = Math.abs(t - threshold);
        best = r;
      }
    }
    return best;
  }

  /** The LSH bucket key of band i: band index and the hash of its rows. */
  public static long bandKey(long[] sig, int band, int rows) {
    long h = 0x9e3779b97f4a7c15L * (band + 1);
    for (int j = band * rows; j < (band + 1) * rows; j++) {
      h = mix(h ^ sig[j]);
    }
    return h;
  }
}
