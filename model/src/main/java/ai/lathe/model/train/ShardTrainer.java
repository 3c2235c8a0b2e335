package ai.lathe.model.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.Predicate;

/**
 * The data order of one shard as a pure function of the global step: step s takes the next
 * batchSize·gradAccum examples of an epoch order shuffled by (seed, partition, epoch). A round
 * of distributed training, a resumed run and the single-machine trainer all draw the same
 * batches for the same step, so they need no data-position state beyond the step count.
 */
public final class ShardTrainer<T> {
  private final List<T> shard;
  private final int partition;
  private final long seed;
  private final int batchSize;
  private final int gradAccum;
  private final Predicate<T> stratum;
  private int cachedEpoch = -1;
  private List<T> order;

  public ShardTrainer(List<T> shard, int partition, long seed, int batchSize, int gradAccum) {
    this(shard, partition, seed, batchSize, gradAccum, null);
  }

  /**
   * With a stratum (e.g. KTO's desirable label), each epoch shuffles the two classes separately
   * and interleaves them evenly, so every window of consecutive examples - a micro-batch - holds
   * both classes in the shard's proportion instead of a random draw (a batch of 4 drawn at random
   * is all one class one time in eight, and 3:1 half the time).
   */
  public ShardTrainer(List<T> shard, int partition, long seed, int batchSize, int gradAccum, Predicate<T> stratum) {
    if (shard.isEmpty()) {
      throw new IllegalArgumentException("partition " + partition + " has no training examples");
    }
    this.shard = shard;
    this.partition = partition;
    this.seed = seed;
    this.batchSize = batchSize;
    this.gradAccum = gradAccum;
    this.stratum = stratum;
  }

  private List<T> epoch(int e) {
    if (e != cachedEpoch) {
      Random rnd = new Random(seed * 1_000_003L + partition * 7919L + e);
      if (stratum == null) {
        order = new ArrayList<>(shard);
        Collections.shuffle(order, rnd);
      } else {
        List<T> yes = new ArrayList<>();
        List<T> no = new ArrayList<>();
        shard.forEach(x -> (stratum.test(x) ? yes : no).add(x));
        Collections.shuffle(yes, rnd);
        Collections.shuffle(no, rnd);
        order = interleave(yes, no);
      }
      cachedEpoch = e;
    }
    return order;
  }

  /** a and b merged so that after every prefix each has been drawn in proportion (the lagging one next). */
  static <T> List<T> interleave(List<T> a, List<T> b) {
    List<T> out = new ArrayList<>(a.size() + b.size());
    int i = 0;
    int j = 0;
    while (i < a.size() || j < b.size()) {
      // compare (i+1)/|a| with (j+1)/|b| without division: take from the list that is further behind
      boolean takeA = j >= b.size() || i < a.size() && (long) (i + 1) * b.size() <= (long) (j + 1) * a.size();
      out.add(takeA ? a.get(i++) : b.get(j++));
    }
    return out;
  }

  /** The micro-batches of global step s. */
  public List<List<T>> microBatches(long step) {
    long pos = step * batchSize * gradAccum;
    List<List<T>> out = new ArrayList<>();
    for (int k = 0; k < gradAccum; k++) {
      List<T> mb = new ArrayList<>();
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
