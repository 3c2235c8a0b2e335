package ai.lathe.jobs;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;

/**
 * What one partition returns from a round, summed in partition order (OrderedSum): the adapter state (summed),
 * how many partitions contributed, loss and token counts, the slowest partition's compute time,
 * and each executor JVM's model-load count.
 */
public record RoundResult(AdapterState sum, int count, double lossSum, long targetTokens, long tokens,
    double gradNormSum, int steps, double maxComputeSeconds, Map<String, Long> loadsByExecutor)
    implements Serializable {

  public static RoundResult zero() {
    return new RoundResult(null, 0, 0, 0, 0, 0, 0, 0, Map.of());
  }

  public RoundResult plus(RoundResult o) {
    if (o.count == 0) {
      return this;
    }
    if (count == 0) {
      return o;
    }
    Map<String, Long> loads = new HashMap<>(loadsByExecutor);
    o.loadsByExecutor.forEach((k, v) -> loads.merge(k, v, Math::max));
    return new RoundResult(sum.plus(o.sum), count + o.count, lossSum + o.lossSum, targetTokens + o.targetTokens,
        tokens + o.tokens, gradNormSum + o.gradNormSum, steps + o.steps,
        Math.max(maxComputeSeconds, o.maxComputeSeconds), loads);
  }
}
