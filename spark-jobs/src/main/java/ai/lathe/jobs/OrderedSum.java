package ai.lathe.jobs;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function2;
import scala.Tuple2;

/**
 * The sum of per-partition results in partition order, whatever order the tasks finish in:
 * float addition is not associative, and treeAggregate's last step folds results as they arrive,
 * so a rerun could differ in the last bits. Two levels, like a tree of depth 2: groups of about
 * √P partitions are summed on executors in index order, then the group sums on the driver.
 */
final class OrderedSum {
  private OrderedSum() {}

  static <T extends Serializable> T of(JavaRDD<Tuple2<Integer, T>> parts, Function2<T, T, T> plus, int partitions)
      throws Exception {
    int group = (int) Math.ceil(Math.sqrt(Math.max(1, partitions)));
    int groups = (Math.max(1, partitions) + group - 1) / group;
    List<Tuple2<Integer, T>> sums = new ArrayList<>(parts.mapToPair(t -> new Tuple2<>(t._1() / group, t))
        .groupByKey(groups).mapValues(it -> {
          List<Tuple2<Integer, T>> l = new ArrayList<>();
          it.forEach(l::add);
          return inOrder(l, plus);
        }).collect());
    return inOrder(sums, plus);
  }

  static <T> T inOrder(List<Tuple2<Integer, T>> l, Function2<T, T, T> plus) throws Exception {
    List<Tuple2<Integer, T>> sorted = new ArrayList<>(l);
    sorted.sort(Comparator.comparing(Tuple2::_1));
    T acc = sorted.get(0)._2();
    for (int i = 1; i < sorted.size(); i++) {
      acc = plus.call(acc, sorted.get(i)._2());
    }
    return acc;
  }
}
