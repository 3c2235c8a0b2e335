package ai.lathe.jobs;

import java.util.List;
import org.apache.spark.api.java.JavaRDD;

/**
 * How many optimizer steps every partition runs: max_steps, or epochs over the smallest shard.
 * Shared by the training jobs; fails when a partition holds no training rows.
 */
record ShardPlan(List<Integer> sizes, int totalSteps) {
  static ShardPlan of(JavaRDD<?> train, int parts, String data, int perBatch, int maxSteps, int epochs) {
    List<Integer> sizes = train.mapPartitions(it -> {
      int n = 0;
      for (; it.hasNext(); it.next()) {
        n++;
      }
      return List.of(n).iterator();
    }).collect();
    int smallest = sizes.stream().mapToInt(Integer::intValue).min().orElse(0);
    if (smallest == 0) {
      throw new IllegalArgumentException(data + ": " + parts + " partitions but some hold no training rows "
          + sizes + "; use fewer partitions");
    }
    return new ShardPlan(sizes, maxSteps > 0 ? maxSteps : epochs * Math.max(1, (smallest + perBatch - 1) / perBatch));
  }

  int rounds(int averagingFrequency) {
    return (totalSteps + averagingFrequency - 1) / averagingFrequency;
  }
}
