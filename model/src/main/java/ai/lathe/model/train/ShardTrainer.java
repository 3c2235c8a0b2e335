package ai.lathe.model.train;

import ai.lathe.model.text.ChatTemplate.Tokens;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The data order of one shard as a pure function of the global step: step s takes the next
 * batchSize·gradAccum examples of an epoch order shuffled by (seed, partition, epoch). A round
 * of distributed training, a resumed run and the single-machine trainer all draw the same
 * batches for the same step, so they need no data-position state beyond the step count.
 */
public final class ShardTrainer {
  private final List<Tokens> shard;
  private final int partition;
  private final long seed;
  private final int batchSize;
  private final int gradAccum;
  private int cachedEpoch = -1;
  private List<Tokens> order;

  public ShardTrainer(List<Tokens> shard, int partition, long seed, int batchSize, int gradAccum) {
    if (shard.isEmpty()) {
      throw new IllegalArgumentException("partition " + partition + " has no training examples");
    }
    this.shard = shard;
    this.partition = partition;
    this.seed = seed;
    this.batchSize = batchSize;
    this.gradAccum = gradAccum;
  }

  private List<Tokens> epoch(int e) {
    if (e != cachedEpoch) {
      order = new ArrayList<>(shard);
      Collections.shuffle(order, new Random(seed * 1_000_003L + partition * 7919L + e));
      cachedEpoch = e;
    }
    return order;
  }

  /** The micro-batches of global step s. */
  public List<List<Tokens>> microBatches(long step) {
    long pos = step * batchSize * gradAccum;
    List<List<Tokens>> out = new ArrayList<>();
    for (int k = 0; k < gradAccum; k++) {
      List<Tokens> mb = new ArrayList<>();
      for (int i = 0; i < batchSize; i++, pos++) {
        int e = (int) (pos / shard.size());
        mb.add(epoch(e).get((int) (pos % shard.size())));
      }
      out.add(mb);
    }
    return out;
  }

  /** Seed for a partition's dropout and optimiser: partition 0 uses the run's seed itself. */
  public static long partitionSeed(long seed, int partition) {
    return seed + 7919L * partition;
  }
}
