package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.Faults;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.model.train.MetricSums;
import ai.lathe.model.train.ShardSampler;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.JobMain;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.HashPartitioner;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
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
    JavaRDD<Tokens> train = PreparedData.tokenRows(spark, s0.data(), "train", s0.langs()).mapToPair(e -> e)
        .repartitionAndSortWithinPartitions(new HashPartitioner(parts)).values()
        .persist(StorageLevel.MEMORY_AND_DISK());
    JavaRDD<Tokens> val = PreparedData.tokenRows(spark, s0.data(), "validation", s0.langs()).map(Tuple2::_2)
        .persist(StorageLevel.MEMORY_AND_DISK());
    ShardPlan plan = ShardPlan.of(train, parts, s0.data(), s0.train().batchSize() * s0.train().gradAccum(),
        s0.maxSteps(), s0.epochs());
    List<Integer> sizes = plan.sizes();
    int total = plan.totalSteps();
    SftSettings s = s0.withTotalSteps(total);
    int rounds = plan.rounds(s.averagingFrequency());
    // what one executor with one task slot holds (bench --preset prints the same next to measured peak RSS)
    ai.lathe.model.train.MemoryEstimate mem = ai.lathe.model.train.MemoryEstimate.of(mc,
        PreparedData.weightBytes(s0.model(), hconf), ai.lathe.model.nn.QuantMode.of(s0.quant()),
        s0.train().batchSize(), s0.train().seqLen(), false);
    System.out.printf("sft: %d partitions %s, %d steps per partition in %d rounds of %d%n", parts, sizes, total,
        rounds, s.averagingFrequency());

    // full mode starts from the base's own weights (checked dense and the freeze patterns matched here)
    AdapterSet initSet = s.mode().full() ? null
        : s.lora().useDora() // DoRA's magnitudes start at the (quantised) base's row norms
        ? AdapterSet.init(mc, s.lora(), s.train().seed(), DataType.FLOAT, ExecutorModels.rowNorms(s.model(), s.quant()))
        : AdapterSet.init(mc, s.lora(), s.train().seed(), DataType.FLOAT);
    List<ai.lathe.model.adapter.Param> init = initSet == null
        ? FullModel.initParams(s.model(), s.quant(), s.mode())
        : initSet.params();
    System.out.println("sft: " + JobMemory.trainingAdvice(mc, mem, s.quant(), init, s.averageOptimizerState()));
    // AdaLoRA's statistics and masks travel with an adapter's state
    AdapterState initState = initSet == null ? AdapterState.of(init, s.train().adamW(init))
        : AdapterState.of(initSet, s.train().adamW(init));
    // a checkpoint resumes only the same settings on the same data
    String fingerprint = s.fingerprint() + "-" + manifest.path("input_fingerprint").asText("").substring(0, 12);
    ParameterAveraging.Plan plan2 = new ParameterAveraging.Plan("sft", parts, total, s.averagingFrequency(),
        s.evalEvery(), s.checkpointEvery(), s.checkpointDir(), fingerprint, s.averageOptimizerState(),
        new ParameterAveraging.Outer(s.outerOptimizer(), s.outerLr(), s.outerMomentum()), s.train());
    ParameterAveraging.Outcome o = ParameterAveraging.run(jsc, plan2, initState, train, val, new Objective(s), l -> String.format("loss %.4f%s, compute %.2f s, "
        + "broadcast+aggregate %.2f s", l.get("train_loss").asDouble(), l.has("val_loss") ? String.format(
        ", val_loss %.4f", l.get("val_loss").asDouble()) : "", l.get("compute_s").asDouble(),
        l.get("broadcast_aggregate_s").asDouble()), hconf);
    List<ObjectNode> done = o.alreadyDone() ? AdapterOutput.existing(s.output(), hconf) : null;
    if (done != null) {
      // every round was checkpointed and the output written by the run this one resumes: keep it
      System.out.printf("all %d rounds were already done (%s); kept %s%n", rounds, s.checkpointDir(), s.output());
      train.unpersist();
      val.unpersist();
      return new Result(o.state(), done, 0, 0);
    }
    List<ObjectNode> metrics = o.metrics();
    double lastVal = Double.NaN;
    for (ObjectNode l : metrics) {
      lastVal = l.has("val_loss") ? l.get("val_loss").asDouble() : lastVal;
    }
    if (s.mode().full()) {
      writeModel(s, o.state(), manifest, c, metrics, lastVal, hconf);
    } else {
      AdapterSet out = AdapterSet.empty(mc, s.lora(), DataType.FLOAT);
      o.state().applyTo(out, null);
      writeAdapter(s, out, manifest, c, metrics, lastVal, hconf);
    }
    train.unpersist();
    val.unpersist();
    System.out.printf("sft: wrote %s (%d executor JVMs, %d model loads)%n", s.output(), o.loads().size(),
        o.modelLoads());
    return new Result(o.state(), metrics, o.modelLoads(), o.loads().size());
  }

  /** The length of each adapter tensor (a checkpoint must match them). */
  static int[] sizes(AdapterState s) {
    int[] out = new int[s.params().length];
    for (int i = 0; i < out.length; i++) {
      out[i] = s.params()[i].length;
    }
    return out;
  }

  /** SFT's part of the loop: next-token loss on the completion tokens. */
  record Objective(SftSettings s) implements ParameterAveraging.Objective<Tokens> {
    ParameterAveraging.Engine engine() {
      return ParameterAveraging.engine("sft|" + s.model() + "|" + s.quant() + "|" + s.lora() + "|" + s.train() + "|"
          + s.mode(), () -> {
        LlamaWeights w = ExecutorModels.get(s.model(), s.quant(), s.kernels());
        if (s.mode().full()) {
          return FullModel.engine(w, s.mode()); // a private copy; the executor's cached base stays as loaded
        }
        AdapterSet a = AdapterSet.init(w, s.lora(), 0, DataType.FLOAT);
        return new ParameterAveraging.Engine(new LlamaModel(w, a, DataType.FLOAT), a);
      });
    }

    @Override
    public ParameterAveraging.Partial round(int p, List<Tokens> shard, AdapterState st, long startStep, long endStep) {
      long t0 = System.nanoTime();
      Faults.at(Faults.SFT_ROUND_START, p, startStep);
      ParameterAveraging.Engine e = engine();
      SftTrainer trainer = new SftTrainer(e.model(), s.train().withSeed(ShardSampler.partitionSeed(s.train().seed(), p)));
      trainer.leaveMasksToDriver(); // AdaLoRA: the driver decides masks (afterAverage)
      FullModel.load(st.withStep(startStep), e, trainer.optimizer());
      ShardSampler<Tokens> sampler = new ShardSampler<>(shard, p, s.train().seed(), s.train().batchSize(),
          s.train().gradAccum());
      MetricSums m = new MetricSums();
      long tokens = 0;
      double gn = 0;
      int steps = 0;
      for (long step = startStep; step < endStep; step++) {
        SftTrainer.StepStats ss = trainer.step(sampler.microBatches(step));
        m.add("train_loss", ss.loss(), ss.targetTokens());
        tokens += ss.tokens();
        gn += ss.gradNorm();
        steps++;
      }
      ai.lathe.model.train.AdamW opt = s.averageOptimizerState() ? trainer.optimizer() : null;
      return ParameterAveraging.Partial.of(FullModel.state(e, opt), m, tokens, gn, steps, t0, ExecutorModels.loads(s.model(), s.quant()));
    }

    @Override
    public AdapterState afterAverage(AdapterState avg, long startStep, long endStep, int totalSteps) {
      return avg.allocateAdaLora(s.lora(), totalSteps, startStep, endStep);
    }

    /** val_loss: the mean NLL over the completion tokens of the validation rows. */
    @Override
    public MetricSums evaluate(List<Tokens> all, AdapterState st) {
      ParameterAveraging.Engine e = engine();
      FullModel.load(st, e, null);
      double mean = SftTrainer.validationLoss(e.model(), all, s.train().batchSize(), s.train().seqLen());
      long n = 0;
      for (Tokens t : all) {
        for (int i = 1; i < t.train().length; i++) {
          n += t.train()[i] ? 1 : 0;
        }
      }
      return new MetricSums().add("val_loss", mean, n);
    }

    @Override
    public String evalPrefix() {
      return "";
    }
  }

  /** train.mode full: the trained weights as a Hugging Face model folder (tokenizer files from the base). */
  static void writeModel(SftSettings s, AdapterState trained, JsonNode manifest, Config c, List<ObjectNode> metrics,
      double lastVal, Configuration hconf) throws Exception {
    ObjectNode run = AdapterOutput.runInfo("sft", c, s.data(), manifest, metrics);
    ObjectNode m = (ObjectNode) run.get("metrics");
    m.put("steps", s.train().totalSteps());
    m.set("final_train_loss", metrics.isEmpty() ? null : metrics.get(metrics.size() - 1).get("train_loss"));
    m.put("final_val_loss", lastVal);
    FullModel.write(s.output(), s.model(), s.quant(), s.mode(), trained, run, metrics,
        Map.of("loss.png", List.of("SFT", "train_loss", "val_loss")), hconf);
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
