package ai.lathe.merge;

import java.util.List;
import java.util.Locale;

/**
 * The merge methods over the dense updates ΔW of one module, following mergekit's
 * generalized task arithmetic: sparsify each update, weight it, optionally keep only entries
 * that agree with an elected sign, sum, normalise by the (agreeing) weights, scale by λ.
 */
public enum MergeMethod {
  /** Weighted average (model soups): Wortsman et al., 2022, arXiv:2203.05482. */
  LINEAR("linear", Sparsification.NONE, false, true),
  /** Task arithmetic: Ilharco et al., 2023, "Editing Models with Task Arithmetic", arXiv:2212.04089. */
  TASK_ARITHMETIC("task_arithmetic", Sparsification.NONE, false, false),
  /** TIES-Merging: Yadav et al., 2023, "Resolving Interference When Merging Models", arXiv:2306.01708. */
  TIES("ties", Sparsification.MAGNITUDE, true, true),
  /** DARE: Yu et al., 2024, "Language Models are Super Mario", arXiv:2311.03099 (with linear mixing). */
  DARE_LINEAR("dare_linear", Sparsification.RANDOM, false, true),
  /** DARE with TIES sign consensus (arXiv:2311.03099 and arXiv:2306.01708). */
  DARE_TIES("dare_ties", Sparsification.RANDOM, true, true),
  /** Magnitude pruning then linear mixing (TIES's trim step alone, arXiv:2306.01708). */
  MAGNITUDE_PRUNE("magnitude_prune", Sparsification.MAGNITUDE, false, true);

  /** How updates are pruned before mixing. */
  public enum Sparsification { NONE, MAGNITUDE, RANDOM }

  public final String id;
  public final Sparsification sparsification;
  public final boolean signConsensus;
  public final boolean normalizeByDefault;

  MergeMethod(String id, Sparsification s, boolean consensus, boolean normalize) {
    this.id = id;
    this.sparsification = s;
    this.signConsensus = consensus;
    this.normalizeByDefault = normalize;
  }

  public static MergeMethod of(String name) {
    for (MergeMethod m : values()) {
      if (m.id.equals(name.toLowerCase(Locale.ROOT))) {
        return m;
      }
    }
    throw new IllegalArgumentException("unknown merge method '" + name + "' (linear, task_arithmetic, ties, "
        + "dare_linear, dare_ties, magnitude_prune)");
  }

  /** Settings of one merge. */
  public record Params(boolean normalize, String sign, double lambda, long seed) implements java.io.Serializable {
    public Params {
      if (!sign.equals("total") && !sign.equals("frequency")) {
        throw new IllegalArgumentException("sign must be total or frequency, got " + sign);
      }
    }
  }

  /**
   * Merges the updates of one module (flat, all the same length): deltas[i] with weight w[i] and
   * density d[i]; seed separates DARE's masks per module and adapter.
   */
  public float[] merge(List<float[]> deltas, double[] w, double[] d, Params p, long moduleSeed) {
    int n = deltas.get(0).length;
    int k = deltas.size();
    float[][] weighted = new float[k][];
    for (int i = 0; i < k; i++) {
      if (deltas.get(i).length != n) {
        throw new IllegalArgumentException("updates of different sizes: " + deltas.get(i).length + " vs " + n);
      }
    }
    // each adapter's sparsify + weighting is independent: spread them over the cores
    java.util.stream.IntStream.range(0, k).parallel().forEach(i -> {
      float[] s = switch (sparsification) {
        case NONE -> deltas.get(i);
        case MAGNITUDE -> Ties.trim(deltas.get(i), d[i]);
        case RANDOM -> Sparsify.random(deltas.get(i), d[i], p.seed() * 1_000_003L + moduleSeed * 31 + i, true);
      };
      float[] wi = new float[n];
      for (int j = 0; j < n; j++) {
        wi[j] = (float) (s[j] * w[i]);
      }
      weighted[i] = wi;
    });
    float[] out = new float[n];
    boolean byTotal = p.sign().equals("total");
    int chunk = 1 << 16;
    java.util.stream.IntStream.range(0, (n + chunk - 1) / chunk).parallel().forEach(c -> {
      for (int j = c * chunk, end = Math.min(n, j + chunk); j < end; j++) {
        double mixed = 0;
        double divisor = 0;
        if (signConsensus) {
          // TIES: elect the sign, then the disjoint mean over the agreeing updates
          double[] s = Ties.disjointSum(weighted, w, j, Ties.electSign(weighted, j, byTotal));
          mixed = s[0];
          divisor = s[1];
          // (mergekit leaves a zero divisor at 1 here and a near-zero one below)
        } else {
          for (int i = 0; i < k; i++) {
            mixed += weighted[i][j];
            divisor += w[i];
          }
          if (Math.abs(divisor) < 1e-8) {
            divisor = 1;
          }
        }
        out[j] = (float) ((p.normalize() ? mixed / divisor : mixed) * p.lambda());
      }
    });
    return out;
  }

  /**
   * The same merge as {@link #merge}, in place and on one thread (callers run modules in
   * parallel instead): deltas[i][0, n) are overwritten by the sparsified, weighted updates and
   * the result goes to out[0, n). Every value is computed by the same arithmetic in the same
   * order as {@link #merge}, so the two agree exactly (a test checks it); hist is scratch of
   * {@link Sparsify#HIST} ints. Nothing of the module's size is allocated.
   */
  public void mergeInto(float[][] deltas, int n, double[] w, double[] d, Params p, long moduleSeed, float[] out,
      int[] hist) {
    int k = w.length;
    for (int i = 0; i < k; i++) {
      switch (sparsification) {
        case NONE -> Sparsify.scale(deltas[i], n, w[i]);
        case MAGNITUDE -> Sparsify.magnitudeInPlace(deltas[i], n, d[i], w[i], hist);
        case RANDOM -> Sparsify.randomInPlace(deltas[i], n, d[i], p.seed() * 1_000_003L + moduleSeed * 31 + i, w[i]);
      }
    }
    boolean byTotal = p.sign().equals("total");
    double plainDivisor = 0;
    for (int i = 0; i < k; i++) {
      plainDivisor += w[i];
    }
    if (Math.abs(plainDivisor) < 1e-8) {
      plainDivisor = 1;
    }
    // in blocks, adapter by adapter within a block (sequential streams); each entry still sums
    // over the adapters in order from 0, as merge does
    int block = 2048;
    double[] vote = new double[block];
    double[] mixed = new double[block];
    double[] divisor = new double[block];
    for (int j0 = 0; j0 < n; j0 += block) {
      int len = Math.min(block, n - j0);
      java.util.Arrays.fill(mixed, 0);
      if (signConsensus) {
        java.util.Arrays.fill(vote, 0);
        java.util.Arrays.fill(divisor, 0);
        for (int i = 0; i < k; i++) {
          float[] x = deltas[i];
          if (byTotal) {
            for (int t = 0; t < len; t++) {
              vote[t] += x[j0 + t];
            }
          } else {
            for (int t = 0; t < len; t++) {
              float v = x[j0 + t]; // signum without branches (a signed zero adds nothing either way)
              vote[t] += (v > 0 ? 1f : 0f) - (v < 0 ? 1f : 0f);
            }
          }
        }
        for (int t = 0; t < len; t++) {
          vote[t] = vote[t] >= 0 ? 1.0 : -1.0; // the elected sign
        }
        for (int i = 0; i < k; i++) {
          float[] x = deltas[i];
          double wi = w[i];
          for (int t = 0; t < len; t++) {
            float v = x[j0 + t];
            // signum(v) == elected iff v·elected > 0; keep is 1 then, else 0, without a
            // branch (+0.0 folds -0.0 into +0.0, whose bits minus one are negative). Adding ±0 to
            // a sum that started at +0.0 changes nothing, so this equals merge's conditional adds.
            double prod = v * vote[t] + 0.0;
            double keep = ((Double.doubleToRawLongBits(prod) - 1) >>> 63) ^ 1;
            mixed[t] += v * keep;
            divisor[t] += wi * keep;
          }
        }
        for (int t = 0; t < len; t++) {
          double dv = divisor[t] == 0 ? 1 : divisor[t];
          out[j0 + t] = (float) ((p.normalize() ? mixed[t] / dv : mixed[t]) * p.lambda());
        }
      } else {
        for (int i = 0; i < k; i++) {
          float[] x = deltas[i];
          for (int t = 0; t < len; t++) {
            mixed[t] += x[j0 + t];
          }
        }
        for (int t = 0; t < len; t++) {
          out[j0 + t] = (float) ((p.normalize() ? mixed[t] / plainDivisor : mixed[t]) * p.lambda());
        }
      }
    }
  }
}
