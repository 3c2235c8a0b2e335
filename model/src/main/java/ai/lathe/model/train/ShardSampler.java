package ai.lathe.model.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The data order of one shard as a pure function of the global step: step s takes the next
 * batchSize·gradAccum examples of an epoch order shuffled by (seed, partition, epoch). A round
 * of distributed training, a resumed run and the single-machine trainer all draw the same
 * batches for the same step, so they need no data-position state beyond the step count.
 */
public final class ShardSampler<T> {
  private final List<T> shard;
  private final int partition;
  private final long seed;
  private final int batchSize;
  private final int gradAccum;
  private final Function<T, Object> group;
  private final Comparator<T> within;
  private int cachedEpoch = -1;
  private List<T> order;

  public ShardSampler(List<T> shard, int partition, long seed, int batchSize, int gradAccum) {
    this(shard, partition, seed, batchSize, gradAccum, null, null);
  }

  /**
   * With a group key (KTO: the prompt), each epoch shuffles the groups and keeps the members of
   * a group next to each other (in a shuffled order; within sorts them first so the result does
   * not depend on the shard's order inside a group), so a micro-batch holds the desirable and
   * undesirable completions of the same prompts where the data has both: their shared words then
   * cancel in the gradient as a preference pair's do, instead of adding noise of the size of the
   * whole vocabulary's shift.
   */
  public ShardSampler(List<T> shard, int partition, long seed, int batchSize, int gradAccum,
      Function<T, Object> group, Comparator<T> within) {
    if (shard.isEmpty()) {
      throw new IllegalArgumentException("partition " + partition + " has no training examples");
    }
    this.shard = shard;
    this.partition = partition;
    this.seed = seed;
    this.batchSize = batchSize;
    this.gradAccum = gradAccum;
    this.group = group;
    this.within = within;
  }

  private List<T> epoch(int e) {
    if (e != cachedEpoch) {
      Random rnd = new Random(seed * 1_000_003L + partition * 7919L + e);
      if (group == null) {
        order = new ArrayList<>(shard);
        Collections.shuffle(order, rnd);
      } else {
        Map<Object, List<T>> groups = new LinkedHashMap<>();
        shard.forEach(x -> groups.computeIfAbsent(group.apply(x), k -> new ArrayList<>()).add(x));
        List<List<T>> gs = new ArrayList<>(groups.values());
        Collections.shuffle(gs, rnd);
        order = new ArrayList<>(shard.size());
        for (List<T> g : gs) {
          g.sort(within);
          Collections.shuffle(g, rnd);
          order.addAll(g);
        }
      }
      cachedEpoch = e;
    }
    return order;
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
