package ai.lathe.model.train;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Weighted sums of named metrics, mergeable across micro-batches, steps and partitions, so that
 * a round reports the same means whether it ran on one machine or many. NaN values are skipped.
 */
public final class MetricSums implements Serializable {
  private final LinkedHashMap<String, double[]> sums = new LinkedHashMap<>();

  /** Adds value with the given weight (e.g. the number of examples it is a mean over). */
  public MetricSums add(String name, double value, double weight) {
    if (!Double.isNaN(value) && weight > 0) {
      double[] s = sums.computeIfAbsent(name, k -> new double[2]);
      s[0] += value * weight;
      s[1] += weight;
    }
    return this;
  }

  public MetricSums plus(MetricSums o) {
    MetricSums r = new MetricSums();
    sums.forEach((k, v) -> r.sums.put(k, v.clone()));
    o.sums.forEach((k, v) -> {
      double[] s = r.sums.computeIfAbsent(k, x -> new double[2]);
      s[0] += v[0];
      s[1] += v[1];
    });
    return r;
  }

  public double mean(String name) {
    double[] s = sums.get(name);
    return s == null || s[1] == 0 ? Double.NaN : s[0] / s[1];
  }

  /** Every metric's weighted mean, in first-seen order. */
  public Map<String, Double> means() {
    Map<String, Double> m = new LinkedHashMap<>();
    sums.forEach((k, v) -> m.put(k, v[0] / v[1]));
    return m;
  }
}
