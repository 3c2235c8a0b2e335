package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.Version;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.model.train.ShardTrainer;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.HadoopIo;
import ai.lathe.prep.JobMain;
import ai.lathe.prep.PreparedRow;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
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
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.nd4j.linalg.api.buffer.DataType;
import scala.Tuple2;

/**
 * Distributed LoRA SFT by parameter averaging: each round broadcasts the adapter (and AdamW's
 * moments), every partition runs averaging_frequency steps on its own shard with the engine,
 * the results are summed in partition order (OrderedSum) and the driver averages them (optionally through an outer
 * Nesterov step, DiLoCo-style). Checkpoints every N rounds; a rerun resumes from the last one.
 * {@code spark-submit --class ai.lathe.jobs.SftTrainJob lathe-jobs.jar --config sft.yaml}.
 */
public final class SftTrainJob {
  public static final String USAGE = """
      usage: lathe sft --config conf/sft.yaml [--set key=value ...]
        Distributed LoRA SFT on prepared Parquet (bin/lathe prep) by parameter averaging.
        Writes a PEFT adapter folder with lathe-run.json, metrics.jsonl and loss.png;
        checkpoints to checkpoint_dir and resumes from the newest one when rerun.""";

  private SftTrainJob() {}

  public static void main(String[] argv) {
    System.exit(JobMain.run("sft", argv, USAGE, JobOutputs::sft, SftTrainJob::run));
  }

  /** The job's outcome, for tests and the pipeline. */
  public record Result(AdapterState state, List<ObjectNode> metrics, long modelLoads, int executors) {}

  public static Result run(SparkSession spark, Config c) throws Exception {
    SftSettings s0 = SftSettings.from(c);
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Configuration hconf = jsc.hadoopConfiguration();
    ai.lathe.prep.HadoopStore.check(JobOutputs.sft(c, hconf), hconf);
    // everything checkable is checked before any executor work
    JsonNode manifest = PreparedData.checkManifest(s0.data(), s0.model(), hconf);
    LlamaConfig mc = PreparedData.modelConfig(s0.model(), hconf);
    int parts = Rounds.partitions(spark.sparkContext(), "sft", s0.partitions(), Rounds.waitSeconds(c));
    JavaRDD<Tokens> train = PreparedData.examples(spark, s0.data(), "train", s0.langs())
        .mapToPair(e -> new Tuple2<>(e.id(), e)).repartitionAndSortWithinPartitions(new HashPartitioner(parts))
        .values().map(PreparedData::tokens).persist(StorageLevel.MEMORY_AND_DISK());
    JavaRDD<Tokens> val = PreparedData.examples(spark, s0.data(), "validation", s0.langs())
        .map(PreparedData::tokens).persist(StorageLevel.MEMORY_AND_DISK());
    ShardPlan plan = ShardPlan.of(train, parts, s0.data(), s0.train().batchSize() * s0.train().gradAccum(),
        s0.maxSteps(), s0.epochs());
    List<Integer> sizes = plan.sizes();
    int total = plan.totalSteps();
    SftSettings s = s0.withTotalSteps(total);
    int rounds = plan.rounds(s.averagingFrequency());
    long frozen = PreparedData.estimateFrozenBytes(mc, s0.quant());
    System.out.printf("sft: %d partitions %s, %d steps per partition in %d rounds of %d; recommended "
        + "spark.executor.memoryOverhead >= %d MiB%n", parts, sizes, total, rounds, s.averagingFrequency(),
        (frozen + (512L << 20)) >> 20);

    AdapterSet init = s.lora().useDora() // DoRA's magnitudes start at the (quantised) base's row norms
        ? AdapterSet.init(mc, s.lora(), s.train().seed(), DataType.FLOAT, ExecutorModels.rowNorms(s.model(), s.quant()))
        : AdapterSet.init(mc, s.lora(), s.train().seed(), DataType.FLOAT);
    AdapterState state = AdapterState.of(init, s.averageOptimizerState()
        ? new ai.lathe.model.train.AdamW(init.params(), 0.9, 0.999, 1e-8, 0) : null);
    String[] names = state.names();
    float[][] momentum = s.outerOptimizer().equals("nesterov") ? AdapterState.mul(state.params(), 0) : null;
    int startRound = 0;
    List<ObjectNode> metrics = new ArrayList<>();
    // a checkpoint resumes only the same settings on the same data
    String fingerprint = s.fingerprint() + "-" + manifest.path("input_fingerprint").asText("").substring(0, 12);
    Checkpoints.Loaded ck = Checkpoints.latest(s.checkpointDir(), names, sizes(state), fingerprint, hconf);
    if (ck != null) {
      state = ck.state();
      metrics.addAll(ck.metricsOrEmpty()); // metrics.jsonl keeps the rounds before the resume
      momentum = ck.outerMomentum() != null ? ck.outerMomentum() : momentum;
      startRound = ck.round() + 1;
      System.out.printf("sft: resuming after round %d (step %d) from %s%n", ck.round(), state.step(),
          s.checkpointDir());
    }
    ObjectMapper om = new ObjectMapper();
    Map<String, Long> loads = new LinkedHashMap<>();
    double lastVal = Double.NaN;
    for (int r = startRound; r < rounds; r++) {
      long t0 = System.nanoTime();
      Broadcast<AdapterState> bc = jsc.broadcast(state);
      final long startStep = state.step();
      RoundResult res = OrderedSum.of(Rounds.barrier(train, (p, it) -> runPartition(p, it, bc.value(), s, startStep,
          total)), RoundResult::plus, parts);
      bc.destroy();
      AdapterState avg = res.sum().times(1.0 / res.count()).withStep(Math.min(total, startStep + s.averagingFrequency()));
      if (momentum != null) {
        // DiLoCo outer step: δ = avg − θ, v ← μv + δ, θ ← θ + η(δ + μv) (Nesterov)
        float[][] delta = AdapterState.add(avg.params(), AdapterState.mul(state.params(), -1));
        momentum = AdapterState.add(AdapterState.mul(momentum, s.outerMomentum()), delta);
        float[][] step = AdapterState.mul(AdapterState.add(delta, AdapterState.mul(momentum, s.outerMomentum())),
            s.outerLr());
        avg = new AdapterState(names, AdapterState.add(state.params(), step), avg.m(), avg.v(), avg.step());
      }
      state = s.averageOptimizerState() ? avg : avg.withoutMoments();
      double roundSec = (System.nanoTime() - t0) / 1e9;
      res.loadsByExecutor().forEach((k, v) -> loads.merge(k, v, Math::max));
      ObjectNode line = om.createObjectNode().put("round", r).put("step", state.step())
          .put("train_loss", res.lossSum() / Math.max(1, res.targetTokens())).put("tokens", res.tokens())
          .put("tokens_per_s", res.tokens() / roundSec)
          .put("lr", s.train().lr() > 0 ? new ai.lathe.model.train.LrSchedule(s.train().lr(), s.train().warmupSteps(),
              total, s.train().minLrRatio()).at(state.step() - 1) : 0)
          .put("grad_norm", res.gradNormSum() / Math.max(1, res.steps()))
          .put("compute_s", res.maxComputeSeconds()).put("broadcast_aggregate_s", Math.max(0, roundSec - res.maxComputeSeconds()))
          .put("round_s", roundSec).put("model_loads", loads.values().stream().mapToLong(Long::longValue).sum())
          .put("executors", res.loadsByExecutor().size());
      if (!val.isEmpty() && (s.evalEvery() > 0 && (r + 1) % s.evalEvery() == 0 || r == rounds - 1)) {
        lastVal = validationLoss(val, jsc.broadcast(state), s);
        line.put("val_loss", lastVal);
      }
      metrics.add(line);
      System.out.printf("round %d/%d step %d: loss %.4f%s, %.0f tokens/s, compute %.2f s, broadcast+aggregate %.2f s, "
          + "%d executor JVMs%n", r + 1, rounds, state.step(), line.get("train_loss").asDouble(),
          line.has("val_loss") ? String.format(", val_loss %.4f", lastVal) : "", line.get("tokens_per_s").asDouble(),
          res.maxComputeSeconds(), line.get("broadcast_aggregate_s").asDouble(), res.loadsByExecutor().size());
      if (s.checkpointEvery() > 0 && ((r + 1) % s.checkpointEvery() == 0 || r == rounds - 1)) {
        Checkpoints.write(s.checkpointDir(), r, state, momentum, fingerprint, metrics, hconf);
      }
      if (Integer.getInteger("lathe.test.crashAfterRound", -1) == r) {
        throw new IllegalStateException("injected crash after round " + r + " (test)");
      }
    }
    List<ObjectNode> done = startRound >= rounds ? AdapterOutput.existing(s.output(), hconf) : null;
    if (done != null) {
      // every round was checkpointed and the output written by the run this one resumes: keep it
      System.out.printf("all %d rounds were already done (%s); kept %s%n", rounds, s.checkpointDir(), s.output());
      train.unpersist();
      val.unpersist();
      return new Result(state, done, 0, 0);
    }
    AdapterSet out = AdapterSet.empty(mc, s.lora(), DataType.FLOAT);
    state.applyTo(out, null);
    writeAdapter(s, out, manifest, c, metrics, lastVal, hconf);
    train.unpersist();
    val.unpersist();
    long totalLoads = loads.values().stream().mapToLong(Long::longValue).sum();
    System.out.printf("sft: wrote %s (%d executor JVMs, %d model loads)%n", s.output(), loads.size(), totalLoads);
    return new Result(state, metrics, totalLoads, loads.size());
  }

  /** The length of each adapter tensor (a checkpoint must match them). */
  static int[] sizes(AdapterState s) {
    int[] out = new int[s.params().length];
    for (int i = 0; i < out.length; i++) {
      out[i] = s.params()[i].length;
    }
    return out;
  }

  /** Per-thread engine instances (activations are large): reused across rounds and tasks. */
  private static final ThreadLocal<Map<String, Object[]>> ENGINES = ThreadLocal.withInitial(LinkedHashMap::new);

  static Object[] engine(SftSettings s) {
    String key = s.model() + "|" + s.quant() + "|" + s.lora() + "|" + s.train();
    return ENGINES.get().computeIfAbsent(key, k -> {
      LlamaWeights w = ExecutorModels.get(s.model(), s.quant());
      AdapterSet a = AdapterSet.init(w, s.lora(), 0, DataType.FLOAT);
      return new Object[] {new LlamaModel(w, a, DataType.FLOAT), a};
    });
  }

  static RoundResult runPartition(int p, Iterator<Tokens> it, AdapterState st, SftSettings s, long startStep,
      int total) {
    long t0 = System.nanoTime();
    haltOnceForTests(p, startStep);
    List<Tokens> shard = new ArrayList<>();
    it.forEachRemaining(shard::add);
    Object[] e = engine(s);
    LlamaModel model = (LlamaModel) e[0];
    AdapterSet a = (AdapterSet) e[1];
    SftTrainer.Options o = s.train();
    SftTrainer trainer = new SftTrainer(model, new SftTrainer.Options(o.batchSize(), o.gradAccum(), o.seqLen(), o.lr(),
        o.warmupSteps(), o.totalSteps(), o.minLrRatio(), o.weightDecay(), o.maxGradNorm(),
        ShardTrainer.partitionSeed(o.seed(), p)));
    st.withStep(startStep).applyTo(a, trainer.optimizer());
    ShardTrainer<Tokens> sampler = new ShardTrainer<>(shard, p, o.seed(), o.batchSize(), o.gradAccum());
    double loss = 0;
    long targets = 0;
    long tokens = 0;
    double gn = 0;
    int steps = 0;
    for (long step = startStep; step < Math.min(total, startStep + s.averagingFrequency()); step++) {
      SftTrainer.StepStats ss = trainer.step(sampler.microBatches(step));
      loss += ss.loss() * ss.targetTokens();
      targets += ss.targetTokens();
      tokens += ss.tokens();
      gn += ss.gradNorm();
      steps++;
    }
    AdapterState out = AdapterState.of(a, s.averageOptimizerState() ? trainer.optimizer() : null);
    String exec = Rounds.executorId();
    return new RoundResult(out, 1, loss, targets, tokens, gn, steps, (System.nanoTime() - t0) / 1e9,
        Map.of(exec, ExecutorModels.loads(s.model(), s.quant())));
  }

  /** Test hook: kills this executor JVM once (marker file) in partition 1 after the first round. */
  private static void haltOnceForTests(int p, long startStep) {
    String marker = System.getProperty("lathe.test.haltOnceMarker");
    if (marker != null && p == 1 && startStep > 0) {
      try {
        Files.createFile(Path.of(marker));
      } catch (java.io.IOException e) {
        return; // already killed once
      }
      Runtime.getRuntime().halt(137);
    }
  }

  static double validationLoss(JavaRDD<Tokens> val, Broadcast<AdapterState> bc, SftSettings s) {
    double[] sums = val.mapPartitions(it -> {
      List<Tokens> all = new ArrayList<>();
      it.forEachRemaining(all::add);
      if (all.isEmpty()) {
        return List.of(new double[2]).iterator();
      }
      Object[] e = engine(s);
      bc.value().applyTo((AdapterSet) e[1], null);
      double mean = SftTrainer.validationLoss((LlamaModel) e[0], all, s.train().batchSize(), s.train().seqLen());
      long n = 0;
      for (Tokens t : all) {
        for (int i = 1; i < t.train().length; i++) {
          n += t.train()[i] ? 1 : 0;
        }
      }
      return List.of(new double[] {mean * n, n}).iterator();
    }).reduce((x, y) -> new double[] {x[0] + y[0], x[1] + y[1]});
    bc.destroy();
    return sums[1] == 0 ? Double.NaN : sums[0] / sums[1];
  }

  static void writeAdapter(SftSettings s, AdapterSet out, JsonNode manifest, Config c, List<ObjectNode> metrics,
      double lastVal, Configuration hconf) throws Exception {
    ObjectNode run = AdapterOutput.runInfo("sft", c, s.data(), manifest, metrics);
    ObjectNode m = (ObjectNode) run.get("metrics");
    m.put("steps", s.train().totalSteps());
    m.set("final_train_loss", metrics.isEmpty() ? null : metrics.get(metrics.size() - 1).get("train_loss"));
    m.put("final_val_loss", lastVal);
    AdapterOutput.write(s.output(), s.model(), out, run, metrics,
        Map.of("loss.png", List.of("SFT", "train_loss", "val_loss")), hconf);
  }
}
