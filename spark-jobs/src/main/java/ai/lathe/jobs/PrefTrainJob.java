package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.KtoTrainer;
import ai.lathe.model.train.MetricSums;
import ai.lathe.model.train.PreferenceTrainer;
import ai.lathe.model.train.ShardTrainer;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.HashPartitioner;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.nd4j.linalg.api.buffer.DataType;
import scala.Tuple2;

/**
 * Preference optimisation (DPO family or KTO) by parameter averaging, with the same rounds,
 * checkpoints and resume as SFT: only the policy runs; the reference log-probs come from the data
 * (lathe ref-logps) or, when reference.on_the_fly is set, are computed once before training.
 * KTO's KL estimate scores mismatched pairs with the reference engine at every step.
 */
public final class PrefTrainJob {
  private PrefTrainJob() {}

  /** A partition's round: summed adapter state, metric sums, counts and timings (summed in partition order). */
  record Round(AdapterState sum, int count, MetricSums metrics, long tokens, double gradNormSum, int steps,
      double maxComputeSeconds, Map<String, Long> loads) implements Serializable {
    Round plus(Round o) {
      if (o.count == 0) {
        return this;
      }
      if (count == 0) {
        return o;
      }
      Map<String, Long> l = new LinkedHashMap<>(loads);
      o.loads.forEach((k, v) -> l.merge(k, v, Math::max));
      return new Round(sum.plus(o.sum), count + o.count, metrics.plus(o.metrics), tokens + o.tokens,
          gradNormSum + o.gradNormSum, steps + o.steps, Math.max(maxComputeSeconds, o.maxComputeSeconds), l);
    }
  }

  public record Result(AdapterState state, List<ObjectNode> metrics) {}

  public static Result run(SparkSession spark, Config c, String kind) throws Exception {
    PrefSettings s0 = PrefSettings.from(c, kind);
    boolean kto = kind.equals("kto");
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Configuration hconf = jsc.hadoopConfiguration();
    ai.lathe.prep.HadoopStore.check(JobOutputs.pref(c, kind), hconf);
    JsonNode manifest = PreparedData.checkManifest(s0.data(), s0.model(), hconf, kto ? "kto" : "preference",
        kto ? Schemas.KTO_SCHEMA_VERSION : Schemas.PREFERENCE_SCHEMA_VERSION);
    LlamaConfig mc = PreparedData.modelConfig(s0.model(), hconf);
    AdapterSet init = s0.adapter() != null ? PeftAdapter.read(Path.of(s0.adapter()), mc, DataType.FLOAT)
        : s0.lora().useDora() ? AdapterSet.init(mc, s0.lora(), s0.train().seed(), DataType.FLOAT,
            ExecutorModels.rowNorms(s0.model(), s0.quant()))
        : AdapterSet.init(mc, s0.lora(), s0.train().seed(), DataType.FLOAT);
    checkReference(s0, mc);
    Dataset<Row> df = PrefData.load(spark, s0, manifest, hconf);
    int parts = Rounds.partitions(spark.sparkContext(), kind, s0.partitions(), Rounds.waitSeconds(c));
    // KTO: keyed by prompt, so that a prompt's completions share a partition (and its micro-batches)
    JavaRDD<Object> train = PrefData.examples(df, "train", kto).mapToPair(e -> kto ? PrefData.byPrompt(e) : e)
        .repartitionAndSortWithinPartitions(kto ? new PrefData.PrefixPartitioner(parts) : new HashPartitioner(parts))
        .values().persist(StorageLevel.MEMORY_AND_DISK());
    JavaRDD<Object> val = PrefData.examples(df, "validation", kto).map(Tuple2::_2)
        .persist(StorageLevel.MEMORY_AND_DISK());
    ShardPlan plan = ShardPlan.of(train, parts, s0.data(), s0.train().batchSize() * s0.train().gradAccum(),
        s0.maxSteps(), s0.epochs());
    List<Integer> sizes = plan.sizes();
    int total = plan.totalSteps();
    PrefSettings s = s0.withTotalSteps(total);
    int rounds = plan.rounds(s.averagingFrequency());
    System.out.printf("%s: %d partitions %s, %d steps per partition in %d rounds of %d, loss %s beta %s, reference %s%n",
        kind, parts, sizes, total, rounds, s.averagingFrequency(), s.lossType(), s.beta(),
        s.referenceAdapter() == null ? "base (adapters disabled)" : s.referenceAdapter());

    AdapterState state = AdapterState.of(init, new ai.lathe.model.train.AdamW(init.params(), 0.9, 0.999, 1e-8, 0));
    String fingerprint = s.fingerprint() + "-" + manifest.path("input_fingerprint").asText("").substring(0, 12);
    int startRound = 0;
    ObjectMapper om = new ObjectMapper();
    List<ObjectNode> metrics = new ArrayList<>();
    Checkpoints.Loaded ck = Checkpoints.latest(s.checkpointDir(), state.names(), SftTrainJob.sizes(state), fingerprint,
        hconf);
    if (ck != null) {
      state = ck.state();
      metrics.addAll(ck.metricsOrEmpty()); // metrics.jsonl keeps the rounds before the resume
      startRound = ck.round() + 1;
      System.out.printf("%s: resuming after round %d (step %d) from %s%n", kind, ck.round(), state.step(),
          s.checkpointDir());
    }
    for (int r = startRound; r < rounds; r++) {
      long t0 = System.nanoTime();
      Broadcast<AdapterState> bc = jsc.broadcast(state);
      final long startStep = state.step();
      Round res = OrderedSum.of(Rounds.barrier(train, (p, it) -> runPartition(p, it, bc.value(), s, startStep, total)),
          Round::plus, parts);
      bc.destroy();
      state = res.sum().times(1.0 / res.count()).withStep(Math.min(total, startStep + s.averagingFrequency()));
      double sec = (System.nanoTime() - t0) / 1e9;
      ObjectNode line = om.createObjectNode().put("round", r).put("step", state.step());
      putMetrics(line, "", res.metrics());
      line.put("grad_norm", res.gradNormSum() / Math.max(1, res.steps())).put("tokens", res.tokens())
          .put("tokens_per_s", res.tokens() / sec).put("compute_s", res.maxComputeSeconds()).put("round_s", sec)
          .put("executors", res.loads().size());
      if (!val.isEmpty() && (s.evalEvery() > 0 && (r + 1) % s.evalEvery() == 0 || r == rounds - 1)) {
        putMetrics(line, "eval_", evaluate(val, jsc.broadcast(state), s));
      }
      metrics.add(line);
      System.out.printf("round %d/%d step %d: %s%s, %.0f tokens/s, %d executor JVMs%n", r + 1, rounds, state.step(),
          summary(line, ""), line.has("eval_loss") ? ", eval " + summary(line, "eval_") : "",
          line.get("tokens_per_s").asDouble(), res.loads().size());
      if (s.checkpointEvery() > 0 && ((r + 1) % s.checkpointEvery() == 0 || r == rounds - 1)) {
        Checkpoints.write(s.checkpointDir(), r, state, null, fingerprint, metrics, hconf);
      }
    }
    List<ObjectNode> done = startRound >= rounds ? AdapterOutput.existing(s.output(), hconf) : null;
    if (done != null) {
      // every round was checkpointed and the output written by the run this one resumes: keep it
      System.out.printf("all %d rounds were already done (%s); kept %s%n", rounds, s.checkpointDir(), s.output());
      train.unpersist();
      val.unpersist();
      return new Result(state, done);
    }
    AdapterSet out = AdapterSet.empty(mc, s.lora(), DataType.FLOAT);
    state.applyTo(out, null);
    ObjectNode run = AdapterOutput.runInfo(kind, c, s.data(), manifest, metrics);
    ((ObjectNode) run.get("metrics")).put("steps", total).set("final", metrics.isEmpty() ? null
        : metrics.get(metrics.size() - 1));
    Map<String, List<String>> plots = new LinkedHashMap<>();
    plots.put("loss.png", List.of(kind.toUpperCase(java.util.Locale.ROOT), "loss", "eval_loss"));
    plots.put("rewards.png", List.of(kind.toUpperCase(java.util.Locale.ROOT) + " rewards", "rewards/margins",
        "eval_rewards/margins", "rewards/accuracies", "eval_rewards/accuracies"));
    AdapterOutput.write(s.output(), s.model(), out, run, metrics, plots, hconf);
    train.unpersist();
    val.unpersist();
    System.out.printf("%s: wrote %s%n", kind, s.output());
    return new Result(state, metrics);
  }

  /** loss, margins and (where the loss defines them, not KTO) accuracies of one metrics line. */
  static String summary(ObjectNode line, String prefix) {
    StringBuilder b = new StringBuilder(String.format("loss %.4f", line.path(prefix + "loss").asDouble()));
    for (String k : List.of("margins", "accuracies")) {
      if (line.has(prefix + "rewards/" + k)) {
        b.append(String.format(", %s %.3f", k, line.get(prefix + "rewards/" + k).asDouble()));
      }
    }
    return b.toString();
  }

  /** Means of a round's metric sums, with KTO's margins derived from its two reward means. */
  static void putMetrics(ObjectNode line, String prefix, MetricSums m) {
    Map<String, Double> means = m.means();
    if (!means.containsKey("rewards/margins") && means.containsKey("rewards/chosen")
        && means.containsKey("rewards/rejected")) {
      means.put("rewards/margins", means.get("rewards/chosen") - means.get("rewards/rejected"));
    }
    means.forEach((k, v) -> line.put(prefix + k, v));
  }

  /** A named reference adapter must be readable for this model and adapt the same modules as the policy. */
  static void checkReference(PrefSettings s, LlamaConfig mc) throws java.io.IOException {
    if (s.referenceAdapter() == null) {
      return;
    }
    LoraConfig ref = PeftAdapter.readConfig(Path.of(s.referenceAdapter()));
    if (!new java.util.TreeSet<>(ref.targetModules()).equals(new java.util.TreeSet<>(s.lora().targetModules()))) {
      throw new IllegalArgumentException("reference adapter " + s.referenceAdapter() + " targets " + ref.targetModules()
          + " but the policy adapter targets " + s.lora().targetModules()
          + "; the reference must adapt the same modules (or use the base: leave reference.adapter unset)");
    }
    PeftAdapter.read(Path.of(s.referenceAdapter()), mc, DataType.FLOAT);
  }

  private static final ThreadLocal<Map<String, Object[]>> ENGINES = ThreadLocal.withInitial(LinkedHashMap::new);

  /** Per-thread policy engine and trainer for the settings (reused across rounds and tasks). */
  static Object[] engine(PrefSettings s) {
    return ENGINES.get().computeIfAbsent(s.model() + "|" + s.quant() + "|" + s.lora() + "|" + s.train().seqLen(), k -> {
      LlamaWeights w = ExecutorModels.get(s.model(), s.quant());
      AdapterSet a = AdapterSet.init(w, s.lora(), 0, DataType.FLOAT);
      return new Object[] {new LlamaModel(w, a, DataType.FLOAT), a};
    });
  }

  static PreferenceTrainer<Object> trainer(PrefSettings s, LlamaModel m, SftTrainer.Options o) {
    @SuppressWarnings("unchecked")
    PreferenceTrainer<Object> t = (PreferenceTrainer<Object>) (PreferenceTrainer<?>) (s.kind().equals("kto")
        ? new KtoTrainer(m, RefLogpsJob.engine(s.model(), s.quant(), s.referenceAdapter()), o, s.beta(), s.desirableWeight(),
            s.undesirableWeight())
        : new DpoTrainer(m, o, s.lossType(), s.beta(), s.labelSmoothing()));
    return t;
  }

  static Round runPartition(int p, Iterator<Object> it, AdapterState st, PrefSettings s, long startStep, int total) {
    long t0 = System.nanoTime();
    List<Object> shard = new ArrayList<>();
    it.forEachRemaining(shard::add);
    Object[] e = engine(s);
    SftTrainer.Options o = s.train();
    PreferenceTrainer<Object> trainer = trainer(s, (LlamaModel) e[0], new SftTrainer.Options(o.batchSize(),
        o.gradAccum(), o.seqLen(), o.lr(), o.warmupSteps(), o.totalSteps(), o.minLrRatio(), o.weightDecay(),
        o.maxGradNorm(), ShardTrainer.partitionSeed(o.seed(), p)));
    st.withStep(startStep).applyTo((AdapterSet) e[1], trainer.optimizer());
    // KTO: micro-batches hold desirable and undesirable completions in the shard's proportion
    ShardTrainer<Object> sampler = s.kind().equals("kto") ? ktoSampler(shard, p, o)
        : new ShardTrainer<>(shard, p, o.seed(), o.batchSize(), o.gradAccum());
    MetricSums m = new MetricSums();
    long tokens = 0;
    double gn = 0;
    int steps = 0;
    for (long step = startStep; step < Math.min(total, startStep + s.averagingFrequency()); step++) {
      PreferenceTrainer.Stats ss = trainer.step(sampler.microBatches(step));
      m = m.plus(ss.metrics());
      tokens += ss.tokens();
      gn += ss.gradNorm();
      steps++;
    }
    String exec = Rounds.executorId();
    return new Round(AdapterState.of((AdapterSet) e[1], trainer.optimizer()), 1, m, tokens, gn, steps,
        (System.nanoTime() - t0) / 1e9, Map.of(exec, ExecutorModels.loads(s.model(), s.quant())));
  }

  /** KTO: a prompt's completions sit together in the data order (see ShardTrainer). */
  @SuppressWarnings({"unchecked", "rawtypes"})
  static ShardTrainer<Object> ktoSampler(List<Object> shard, int p, SftTrainer.Options o) {
    java.util.Comparator<Object> order = (java.util.Comparator) KtoTrainer.Example.ORDER;
    return new ShardTrainer<>(shard, p, o.seed(), o.batchSize(), o.gradAccum(),
        x -> ((KtoTrainer.Example) x).prompt(), order);
  }

  static MetricSums evaluate(JavaRDD<Object> val, Broadcast<AdapterState> bc, PrefSettings s) {
    MetricSums m = val.mapPartitions(it -> {
      List<Object> all = new ArrayList<>();
      it.forEachRemaining(all::add);
      if (all.isEmpty()) {
        return List.of(new MetricSums()).iterator();
      }
      Object[] e = engine(s);
      bc.value().applyTo((AdapterSet) e[1], null);
      return List.of(trainer(s, (LlamaModel) e[0], s.train()).evaluate(all, s.train().batchSize())).iterator();
    }).reduce(MetricSums::plus);
    bc.destroy();
    return m;
  }
}
