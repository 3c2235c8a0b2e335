package ai.lathe.jobs;

import java.io.Serializable;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag;
import scala.runtime.AbstractFunction1;

/**
 * What every parameter-averaging job needs from the cluster: one task slot per partition, all
 * partitions of a round running at once. Before the first round the job waits (bounded) for the
 * executors it was promised and refuses to start when there are fewer free slots than
 * partitions; each round then runs as a barrier stage (Spark's mode for synchronous training,
 * as XGBoost4J-Spark and TorchDistributor use it): all its tasks start together, or the stage
 * fails instead of queueing partitions one after another on the same executor.
 */
final class Rounds {
  private Rounds() {}

  /** A partition's work in one round. */
  @FunctionalInterface
  interface PartitionFn<T, R> extends Serializable {
    R apply(int partition, Iterator<T> rows) throws Exception;
  }

  /** distributed.executor_wait_s (default 120), checked. */
  static double waitSeconds(ai.lathe.model.Config c) {
    double w = c.number("distributed.executor_wait_s", 120);
    if (!(w >= 0)) {
      throw new IllegalArgumentException(c.source() + ": distributed.executor_wait_s must be >= 0");
    }
    return w;
  }

  /** Task slots the scheduler can run at once now (local: cores; cluster: registered executors' cores / task cpus). */
  static int slots(SparkContext sc) {
    return sc.maxNumConcurrentTasks(sc.resourceProfileManager().defaultResourceProfile());
  }

  /** Registered executor JVMs (local mode: the driver itself, 1). */
  static int executors(SparkContext sc) {
    int n = sc.statusTracker().getExecutorInfos().length;
    return sc.isLocal() ? n : Math.max(0, n - 1);
  }

  /**
   * The slots the application was promised, when its configuration says: local-cluster[N,C,M],
   * spark.executor.instances × executor cores (YARN, Kubernetes), or spark.cores.max
   * (standalone); 0 when unknown.
   */
  static int promisedSlots(SparkConf conf, String master) {
    int taskCpus = conf.getInt("spark.task.cpus", 1);
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,.*\\]")
        .matcher(master);
    if (m.matches()) {
      return Integer.parseInt(m.group(1)) * Integer.parseInt(m.group(2)) / taskCpus;
    }
    if (conf.contains("spark.executor.instances") && conf.contains("spark.executor.cores")) {
      return conf.getInt("spark.executor.instances", 0) * conf.getInt("spark.executor.cores", 1) / taskCpus;
    }
    if (conf.contains("spark.cores.max")) {
      return conf.getInt("spark.cores.max", 0) / taskCpus;
    }
    return 0;
  }

  /**
   * The number of partitions (= task slots) a job's rounds use: the configured one, after
   * waiting up to waitSeconds for that many slots (a clear error when they never come), or,
   * when 0, the slots available once the promised ones registered (or the wait ran out).
   * Prints the master, executors and slots.
   */
  static int partitions(SparkContext sc, String job, int configured, double waitSeconds) throws InterruptedException {
    int want = configured > 0 ? configured : promisedSlots(sc.getConf(), sc.master());
    long deadline = System.nanoTime() + (long) (waitSeconds * 1e9);
    int slots = slots(sc);
    boolean waited = false;
    while (slots < want && System.nanoTime() < deadline) {
      if (!waited) {
        System.out.printf("%s: waiting up to %.0f s for %d task slots (have %d on %d executors)%n", job, waitSeconds,
            want, slots, executors(sc));
        waited = true;
      }
      Thread.sleep(250);
      slots = slots(sc);
    }
    System.out.printf("%s: master %s, %d executor JVM%s, %d task slots%n", job, sc.master(), executors(sc),
        executors(sc) == 1 ? "" : "s", slots);
    if (slots < 1) {
      throw new IllegalStateException(job + ": no executor registered with " + sc.master() + " within "
          + (long) waitSeconds + " s (distributed.executor_wait_s)");
    }
    if (configured > slots) {
      throw new IllegalArgumentException(job + ": distributed.partitions=" + configured + " but the cluster ("
          + sc.master() + ") has " + slots + " free task slots on " + executors(sc) + " executors after waiting "
          + (long) waitSeconds + " s; every partition of a round needs its own slot at the same time (barrier "
          + "rounds): lower distributed.partitions, add executors/cores, or raise distributed.executor_wait_s");
    }
    if (configured <= 0) {
      System.out.printf("%s: distributed.partitions unset: one partition per task slot, %d%n", job, slots);
    }
    return configured > 0 ? configured : slots;
  }

  /** The executor this task runs in ("driver" in local mode). */
  static String executorId() {
    return SparkEnv.get() == null ? "driver" : SparkEnv.get().executorId();
  }

  /** One round: fn on every partition as a barrier stage; (partition, result) pairs. */
  static <T, R> JavaRDD<Tuple2<Integer, R>> barrier(JavaRDD<T> rdd, PartitionFn<T, R> fn) {
    @SuppressWarnings({"unchecked", "rawtypes"})
    ClassTag<Tuple2<Integer, R>> tag = (ClassTag) scala.reflect.ClassTag$.MODULE$.apply(Tuple2.class);
    return JavaRDD.fromRDD(rdd.rdd().barrier().mapPartitions(new Task<>(fn), false, tag), tag);
  }

  /** The barrier task: a Scala function over the partition's iterator. */
  private static final class Task<T, R> extends AbstractFunction1<scala.collection.Iterator<T>,
      scala.collection.Iterator<Tuple2<Integer, R>>> implements Serializable {
    private final PartitionFn<T, R> fn;

    Task(PartitionFn<T, R> fn) {
      this.fn = fn;
    }

    @Override
    public scala.collection.Iterator<Tuple2<Integer, R>> apply(scala.collection.Iterator<T> it) {
      int p = TaskContext.getPartitionId();
      try {
        R r = fn.apply(p, CollectionConverters.asJava(it));
        return CollectionConverters.asScala(List.of(new Tuple2<>(p, r)).iterator());
      } catch (RuntimeException e) {
        throw e;
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
