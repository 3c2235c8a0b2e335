package ai.lathe.jobs;

import ai.lathe.model.Faults;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.train.LrSchedule;
import ai.lathe.model.train.MetricSums;
import ai.lathe.model.train.SftTrainer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

/**
 * The parameter-averaging loop every training job runs (SFT, DPO, KTO), in the model of DL4J's
 * ParameterAveragingTrainingMaster. Each round: broadcast the adapter (and AdamW's moments) →
 * every partition runs averaging_frequency steps on its own shard, all partitions at once (a
 * barrier stage) → the results are summed in partition order (OrderedSum: reruns give the same
 * bits) → the driver averages them, plainly or through an outer Nesterov step (DiLoCo) →
 * metrics, validation every eval_every rounds, a checkpoint every checkpoint_every rounds. A
 * rerun resumes after the newest intact checkpoint. The job supplies only its Objective: what a
 * partition's steps are and what validation measures.
 */
final class ParameterAveraging {
  private ParameterAveraging() {}

  /** A job's own part of the loop. */
  interface Objective<T> extends Serializable {
    /** A partition's steps [startStep, endStep) from the broadcast state. */
    Partial round(int partition, List<T> shard, AdapterState start, long startStep, long endStep);

    /** Metric sums of one partition of the validation split. */
    MetricSums evaluate(List<T> rows, AdapterState state);

    /**
     * The adapter's own rule on each round's average, on the driver: AdaLoRA decides the masks
     * from the averaged importance EMAs so every partition keeps the same ranks.
     */
    default AdapterState afterAverage(AdapterState avg, long startStep, long endStep, int totalSteps) {
      return avg;
    }

    /** The prefix of validation metrics in the metrics line (SFT names its own: val_loss). */
    default String evalPrefix() {
      return "eval_";
    }
  }

  /** What one partition returns from a round (summed in partition order). */
  record Partial(AdapterState sum, int count, MetricSums metrics, long tokens, double gradNormSum, int steps,
      double maxComputeSeconds, Map<String, Long> loads) implements Serializable {
    /** A partition's result: its state, metric sums and counts, and its executor's model loads. */
    static Partial of(AdapterState state, MetricSums m, long tokens, double gradNormSum, int steps, long t0,
        long modelLoads) {
      return new Partial(state, 1, m, tokens, gradNormSum, steps, (System.nanoTime() - t0) / 1e9,
          Map.of(Rounds.executorId(), modelLoads));
    }

    Partial plus(Partial o) {
      if (o.count == 0) {
        return this;
      }
      if (count == 0) {
        return o;
      }
      Map<String, Long> l = new LinkedHashMap<>(loads);
      o.loads.forEach((k, v) -> l.merge(k, v, Math::max));
      return new Partial(sum.plus(o.sum), count + o.count, metrics.plus(o.metrics), tokens + o.tokens,
          gradNormSum + o.gradNormSum, steps + o.steps, Math.max(maxComputeSeconds, o.maxComputeSeconds), l);
    }
  }

  /** The outer optimizer applied to each round's average: none, or Nesterov (DiLoCo). */
  record Outer(String kind, double lr, double momentum) implements Serializable {
    Outer {
      if (!kind.equals("none") && !kind.equals("nesterov")) {
        throw new IllegalArgumentException("distributed.outer_optimizer must be none or nesterov, not '" + kind + "'");
      }
    }
  }

  /** The loop's settings: the distributed.* keys and what the job computed from its data. */
  record Plan(String job, int partitions, int totalSteps, int averagingFrequency, int evalEvery, int checkpointEvery,
      String checkpointDir, String fingerprint, boolean averageMoments, Outer outer, SftTrainer.Options train)
      implements Serializable {
    int rounds() {
      return (totalSteps + averagingFrequency - 1) / averagingFrequency;
    }
  }

  /** The loop's result; alreadyDone: every round had been checkpointed by the run this one resumed. */
  record Outcome(AdapterState state, List<ObjectNode> metrics, boolean alreadyDone, Map<String, Long> loads) {
    long modelLoads() {
      return loads.values().stream().mapToLong(Long::longValue).sum();
    }
  }

  /** A task thread's engine: the model over the executor's frozen base and its adapters. */
  record Engine(LlamaModel model, AdapterSet adapters) {}

  /** The two most recent engines per task thread (a job's own; the one before it, e.g. a round's eval). */
  private static final ThreadLocal<Map<String, Engine>> ENGINES =
      ThreadCache.perThread(2, e -> e.model().releaseWorkspaces());

  /** The engine for key on this task thread (activations are large: made once, reused across rounds and tasks). */
  static Engine engine(String key, Supplier<Engine> make) {
    return ENGINES.get().computeIfAbsent(key, k -> make.get());
  }

  /**
   * Runs the rounds from init (or the newest intact checkpoint). line formats a round's metrics for
   * the console (after "round r/R step s: "; tokens/s and executors are appended).
   */
  static <T> Outcome run(JavaSparkContext jsc, Plan p, AdapterState init, JavaRDD<T> train, JavaRDD<T> val,
      Objective<T> obj, Function<ObjectNode, String> line, Configuration hconf) throws Exception {
    AdapterState state = p.averageMoments() ? init : init.withoutMoments();
    String[] names = state.names();
    float[][] momentum = p.outer().kind().equals("nesterov") ? AdapterState.mul(state.params(), 0) : null;
    int startRound = 0;
    List<ObjectNode> metrics = new ArrayList<>();
    Checkpoints.Loaded ck = Checkpoints.latest(p.checkpointDir(), names, SftTrainJob.sizes(state), p.fingerprint(),
        hconf);
    if (ck != null) {
      state = ck.state();
      momentum = ck.outerMomentum() != null ? ck.outerMomentum() : momentum;
      metrics.addAll(ck.metricsOrEmpty()); // metrics.jsonl keeps the rounds before the resume
      startRound = ck.round() + 1;
      System.out.printf("%s: resuming after round %d (step %d) from %s%n", p.job(), ck.round(), state.step(),
          p.checkpointDir());
    }
    ObjectMapper om = new ObjectMapper();
    Map<String, Long> loads = new LinkedHashMap<>();
    int rounds = p.rounds();
    int total = p.totalSteps();
    boolean hasVal = !val.isEmpty();
    for (int r = startRound; r < rounds; r++) {
      long t0 = System.nanoTime();
      Broadcast<AdapterState> bc = jsc.broadcast(state);
      final long startStep = state.step();
      final long endStep = Math.min(total, startStep + p.averagingFrequency());
      Partial res = OrderedSum.of(Rounds.barrier(train, (part, it) -> {
        List<T> shard = new ArrayList<>();
        it.forEachRemaining(shard::add);
        return obj.round(part, shard, bc.value(), startStep, endStep);
      }), Partial::plus, p.partitions());
      bc.destroy();
      AdapterState avg = res.sum().times(1.0 / res.count()).withStep(endStep);
      if (momentum != null) {
        // DiLoCo outer step: δ = avg − θ, v ← μv + δ, θ ← θ + η(δ + μv) (Nesterov)
        float[][] delta = AdapterState.add(avg.params(), AdapterState.mul(state.params(), -1));
        momentum = AdapterState.add(AdapterState.mul(momentum, p.outer().momentum()), delta);
        float[][] step = AdapterState.mul(AdapterState.add(delta, AdapterState.mul(momentum, p.outer().momentum())),
            p.outer().lr());
        avg = new AdapterState(names, AdapterState.add(state.params(), step), avg.m(), avg.v(), avg.step());
      }
      avg = obj.afterAverage(avg, startStep, endStep, total);
      state = p.averageMoments() ? avg : avg.withoutMoments();
      double sec = (System.nanoTime() - t0) / 1e9;
      res.loads().forEach((k, v) -> loads.merge(k, v, Math::max));
      SftTrainer.Options o = p.train();
      ObjectNode l = om.createObjectNode().put("round", r).put("step", state.step());
      putMetrics(l, "", res.metrics());
      l.put("tokens", res.tokens()).put("tokens_per_s", res.tokens() / sec)
          .put("lr", o.lr() > 0 ? new LrSchedule(o.lr(), o.warmupSteps(), total, o.minLrRatio()).at(state.step() - 1) : 0)
          .put("grad_norm", res.gradNormSum() / Math.max(1, res.steps()))
          .put("compute_s", res.maxComputeSeconds()).put("broadcast_aggregate_s", Math.max(0, sec - res.maxComputeSeconds()))
          .put("round_s", sec).put("model_loads", loads.values().stream().mapToLong(Long::longValue).sum())
          .put("executors", res.loads().size());
      if (hasVal && (p.evalEvery() > 0 && (r + 1) % p.evalEvery() == 0 || r == rounds - 1)) {
        putMetrics(l, obj.evalPrefix(), evaluate(jsc, val, state, obj));
      }
      metrics.add(l);
      System.out.printf("round %d/%d step %d: %s, %.0f tokens/s, %d executor JVMs%n", r + 1, rounds, state.step(),
          line.apply(l), l.get("tokens_per_s").asDouble(), res.loads().size());
      if (p.checkpointEvery() > 0 && ((r + 1) % p.checkpointEvery() == 0 || r == rounds - 1)) {
        Checkpoints.write(p.checkpointDir(), r, state, momentum, p.fingerprint(), metrics, hconf);
      }
      Faults.at(Faults.ROUND_DONE, r, 0);
    }
    return new Outcome(state, metrics, startRound >= rounds, loads);
  }

  static <T> MetricSums evaluate(JavaSparkContext jsc, JavaRDD<T> val, AdapterState state, Objective<T> obj) {
    Broadcast<AdapterState> bc = jsc.broadcast(state);
    MetricSums m = val.mapPartitions(it -> {
      List<T> all = new ArrayList<>();
      it.forEachRemaining(all::add);
      return List.of(all.isEmpty() ? new MetricSums() : obj.evaluate(all, bc.value())).iterator();
    }).reduce(MetricSums::plus);
    bc.destroy();
    return m;
  }

  /** Means of metric sums, with KTO's margins derived from its two reward means. */
  static void putMetrics(ObjectNode line, String prefix, MetricSums m) {
    Map<String, Double> means = m.means();
    if (!means.containsKey("rewards/margins") && means.containsKey("rewards/chosen")
        && means.containsKey("rewards/rejected")) {
      means.put("rewards/margins", means.get("rewards/chosen") - means.get("rewards/rejected"));
    }
    means.forEach((k, v) -> line.put(prefix + k, v));
  }
}
