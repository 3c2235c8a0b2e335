package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.KtoTrainer;
import ai.lathe.model.train.MetricSums;
import ai.lathe.model.train.PreferenceTrainer;
import ai.lathe.model.train.ShardSampler;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.HashPartitioner;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
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
 * KTO's KL estimate scores mismatched pairs with the reference engine at every step. The
 * reference is the base (+ reference.adapter): with LoRA the base is the policy with its adapters
 * disabled; with train.mode full (every weight trains, output a Hugging Face model folder) it is
 * the frozen starting weights, as TRL's frozen ref_model / precompute_ref_log_probs: the policy
 * trains a private copy, the executor's cached base never changes.
 */
public final class PrefTrainJob {
  private PrefTrainJob() {}

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
    // full mode starts from the base's own weights (checked dense and the freeze patterns matched here)
    List<Param> fullInit = s0.mode().full() ? FullModel.initParams(s0.model(), s0.quant(), s0.mode()) : null;
    AdapterSet init = fullInit != null ? null
        : s0.adapter() != null ? PeftAdapter.read(Path.of(s0.adapter()), mc, DataType.FLOAT)
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
        s.referenceAdapter() != null ? s.referenceAdapter() : s.mode().full() ? "base (the frozen starting weights)"
        : "base (adapters disabled)");
    // policy and reference share the executor's frozen base; DPO runs chosen and rejected as one batch
    ai.lathe.model.train.MemoryEstimate mem = ai.lathe.model.train.MemoryEstimate.of(mc,
        PreparedData.weightBytes(s0.model(), hconf), ai.lathe.model.nn.QuantMode.of(s0.quant()),
        s0.train().batchSize() * (kto ? 1 : 2), s0.train().seqLen(), false);
    System.out.println(kind + ": " + JobMemory.trainingAdvice(mc, mem, s0.quant(),
        init == null ? fullInit : init.params(), s0.averageOptimizerState()));

    String fingerprint = s.fingerprint() + "-" + manifest.path("input_fingerprint").asText("").substring(0, 12);
    ParameterAveraging.Plan pp = new ParameterAveraging.Plan(kind, parts, total, s.averagingFrequency(), s.evalEvery(),
        s.checkpointEvery(), s.checkpointDir(), fingerprint, s.averageOptimizerState(), s.outer(), s.train());
    AdapterState initState = init == null ? AdapterState.of(fullInit, s.train().adamW(fullInit))
        : AdapterState.of(init, s.train().adamW(init.params()));
    ParameterAveraging.Outcome o = ParameterAveraging.run(jsc, pp, initState, train, val, new Objective(s),
        l -> summary(l, "") + (l.has("eval_loss") ? ", eval " + summary(l, "eval_") : ""), hconf);
    AdapterState state = o.state();
    List<ObjectNode> metrics = o.metrics();
    List<ObjectNode> done = o.alreadyDone() ? AdapterOutput.existing(s.output(), hconf) : null;
    if (done != null) {
      // every round was checkpointed and the output written by the run this one resumes: keep it
      System.out.printf("all %d rounds were already done (%s); kept %s%n", rounds, s.checkpointDir(), s.output());
      train.unpersist();
      val.unpersist();
      return new Result(state, done);
    }
    ObjectNode run = AdapterOutput.runInfo(kind, c, s.data(), manifest, metrics);
    ((ObjectNode) run.get("metrics")).put("steps", total).set("final", metrics.isEmpty() ? null
        : metrics.get(metrics.size() - 1));
    Map<String, List<String>> plots = new LinkedHashMap<>();
    plots.put("loss.png", List.of(kind.toUpperCase(java.util.Locale.ROOT), "loss", "eval_loss"));
    plots.put("rewards.png", List.of(kind.toUpperCase(java.util.Locale.ROOT) + " rewards", "rewards/margins",
        "eval_rewards/margins", "rewards/accuracies", "eval_rewards/accuracies"));
    if (s.mode().full()) {
      FullModel.write(s.output(), s.model(), s.quant(), s.mode(), state, run, metrics, plots, hconf);
    } else {
      AdapterSet out = AdapterSet.empty(mc, s.lora(), DataType.FLOAT);
      state.applyTo(out, null);
      AdapterOutput.write(s.output(), s.model(), out, run, metrics, plots, hconf);
    }
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

  static PreferenceTrainer<Object> trainer(PrefSettings s, LlamaModel m, SftTrainer.Options o) {
    @SuppressWarnings("unchecked")
    PreferenceTrainer<Object> t = (PreferenceTrainer<Object>) (PreferenceTrainer<?>) (s.kind().equals("kto")
        ? new KtoTrainer(m, RefLogpsJob.engine(s.model(), s.quant(), s.referenceAdapter()), o, s.beta(), s.desirableWeight(),
            s.undesirableWeight())
        : new DpoTrainer(m, o, s.lossType(), s.beta(), s.labelSmoothing()));
    return t;
  }

  /** DPO's or KTO's part of the loop: the preference loss on the policy, reference log-probs from the data. */
  record Objective(PrefSettings s) implements ParameterAveraging.Objective<Object> {
    ParameterAveraging.Engine engine() {
      return ParameterAveraging.engine("pref|" + s.model() + "|" + s.quant() + "|" + s.lora() + "|" + s.train().seqLen()
          + "|" + s.mode(), () -> {
            LlamaWeights w = ExecutorModels.get(s.model(), s.quant(), s.kernels());
            if (s.mode().full()) {
              return FullModel.engine(w, s.mode()); // a private copy: the cached base stays the reference
            }
            AdapterSet a = AdapterSet.init(w, s.lora(), 0, DataType.FLOAT);
            return new ParameterAveraging.Engine(new LlamaModel(w, a, DataType.FLOAT), a);
          });
    }

    @Override
    public ParameterAveraging.Partial round(int p, List<Object> shard, AdapterState st, long startStep, long endStep) {
      long t0 = System.nanoTime();
      ParameterAveraging.Engine e = engine();
      SftTrainer.Options o = s.train();
      PreferenceTrainer<Object> trainer = trainer(s, e.model(), o.withSeed(ShardSampler.partitionSeed(o.seed(), p)));
      trainer.leaveMasksToDriver(); // AdaLoRA: the driver decides masks (afterAverage)
      FullModel.load(st.withStep(startStep), e, trainer.optimizer());
      ShardSampler<Object> sampler = s.kind().equals("kto") ? ktoSampler(shard, p, o)
          : new ShardSampler<>(shard, p, o.seed(), o.batchSize(), o.gradAccum());
      MetricSums m = new MetricSums();
      long tokens = 0;
      double gn = 0;
      int steps = 0;
      for (long step = startStep; step < endStep; step++) {
        PreferenceTrainer.Stats ss = trainer.step(sampler.microBatches(step));
        m = m.plus(ss.metrics());
        tokens += ss.tokens();
        gn += ss.gradNorm();
        steps++;
      }
      return ParameterAveraging.Partial.of(FullModel.state(e, s.averageOptimizerState() ? trainer.optimizer() : null),
          m, tokens, gn, steps, t0, ExecutorModels.loads(s.model(), s.quant()));
    }

    @Override
    public AdapterState afterAverage(AdapterState avg, long startStep, long endStep, int totalSteps) {
      return avg.allocateAdaLora(s.lora(), totalSteps, startStep, endStep);
    }

    @Override
    public MetricSums evaluate(List<Object> all, AdapterState st) {
      ParameterAveraging.Engine e = engine();
      FullModel.load(st, e, null);
      return trainer(s, e.model(), s.train()).evaluate(all, s.train().batchSize());
    }
  }

  /** KTO: a prompt's completions sit together in the data order (see ShardSampler). */
  @SuppressWarnings({"unchecked", "rawtypes"})
  static ShardSampler<Object> ktoSampler(List<Object> shard, int p, SftTrainer.Options o) {
    java.util.Comparator<Object> order = (java.util.Comparator) KtoTrainer.Example.ORDER;
    return new ShardSampler<>(shard, p, o.seed(), o.batchSize(), o.gradAccum(),
        x -> ((KtoTrainer.Example) x).prompt(), order);
  }
}
