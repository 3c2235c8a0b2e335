package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.TrainableWeights;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.model.train.ShardSampler;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.PreparedRow;
import ai.lathe.prep.Schemas;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Distributed SFT with train.mode full: one partition equals the single-machine trainer, a crashed
 * and resumed run equals an uninterrupted one, and the output is a model folder every command loads.
 */
class SftFullTrainJobTest extends SftJobFixture {
  @BeforeAll
  static void setUp() throws Exception {
    open("sft-full-test", "sft-full", new LlamaConfig("llama", 32000, 32, 2, 4, 2, 48, 1e-5, 10000, false, 512, 1, 2), 64);
  }

  static Config cfg(String name, String... extra) throws Exception {
    List<String> s = new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir.resolve(name),
        "train.mode=full", "train.freeze=[layers\\.1\\.mlp\\.up_proj]", "train.batch_size=2", "train.seq_len=64",
        "train.lr=2e-3", "train.warmup_steps=1", "train.max_steps=4", "train.weight_decay=0.01",
        "distributed.averaging_frequency=2", "distributed.eval_every=2"));
    s.addAll(List.of(extra));
    return Config.load(null, s);
  }

  static double maxDiff(LlamaWeights a, LlamaWeights b) {
    Map<String, INDArray> x = TrainableWeights.named(a);
    Map<String, INDArray> y = TrainableWeights.named(b);
    double d = 0;
    for (var e : x.entrySet()) {
      d = Math.max(d, e.getValue().sub(y.get(e.getKey())).amaxNumber().doubleValue());
    }
    return d;
  }

  @Test
  void onePartitionEqualsTheSingleMachineTrainer() throws Exception {
    SftTrainJob.run(spark, cfg("one", "distributed.partitions=1"));
    for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "lathe-run.json", "loss.png")) {
      assertTrue(Files.exists(dir.resolve("one").resolve(f)), f);
    }
    LlamaWeights spark1 = HfCheckpoint.load(dir.resolve("one"), DataType.FLOAT);
    List<PreparedRow> rows = new ArrayList<>(spark.read().parquet(data + "/data").where("split = 'train'")
        .collectAsList().stream().map(Schemas::fromRow).toList());
    rows.sort(Comparator.comparing(PreparedRow::id));
    List<Tokens> shard = rows.stream().map(PreparedData::tokens).toList();
    SftSettings s = SftSettings.from(cfg("one")).withTotalSteps(4);
    LlamaWeights w = HfCheckpoint.load(model, DataType.FLOAT);
    LlamaModel m = new LlamaModel(w, null, DataType.FLOAT);
    s.mode().attach(m);
    SftTrainer t = new SftTrainer(m, s.train());
    ShardSampler<Tokens> sampler = new ShardSampler<>(shard, 0, s.train().seed(), 2, 1);
    for (int step = 0; step < 4; step++) {
      t.step(sampler.microBatches(step));
    }
    double d = maxDiff(spark1, w);
    assertTrue(d < 1e-5, "max |Spark − local| = " + d);
    LlamaWeights base = HfCheckpoint.load(model, DataType.FLOAT);
    assertTrue(maxDiff(w, base) > 1e-3, "training moved the weights");
    // the frozen tensor is the base's, bit for bit
    assertEquals(0.0, w.layers[1].up().dense().sub(base.layers[1].up().dense()).amaxNumber().doubleValue());
  }

  /** The demo base (sft-local with prep's val_fraction) trains on prep's train split only: no validation row of the later stages is seen. */
  @Test
  void demoBaseRowsAreExactlyPrepsTrainSplit() throws Exception {
    // the split sft-local applies to the base's data (SftData: DataSplit over the normalised content id)
    java.util.Set<String> ids = new java.util.HashSet<>();
    int[] count = {0};
    ai.lathe.model.text.JsonlData.forEach(Path.of("../data/sample/debian-faq/instructions.jsonl"), r -> {
      var ms = ai.lathe.model.text.Examples.toMessages(r.json(), "alpaca", null);
      String id = ai.lathe.model.text.DataSplit.normalizedContentId(ms);
      if (ai.lathe.model.text.DataSplit.split(id, 0.1).equals(ai.lathe.model.text.DataSplit.TRAIN)) {
        ids.add(id);
        count[0]++;
      }
    });
    int kept = count[0];
    List<PreparedRow> prepared = spark.read().parquet(data + "/data").collectAsList().stream().map(Schemas::fromRow)
        .toList();
    long train = prepared.stream().filter(r -> r.split().equals("train")).count();
    long val = prepared.stream().filter(r -> r.split().equals("validation")).count();
    assertTrue(val > 30 && kept >= train && kept < train + 10, kept + " rows kept, prep: " + train + " train");
    for (PreparedRow r : prepared) {
      assertEquals(r.split().equals("train"), ids.contains(r.id()), r.id() + " in " + r.split());
    }
  }

  @Test
  void resumesAfterACrashWithTheSameResult() throws Exception {
    SftTrainJob.run(spark, cfg("whole", "distributed.partitions=2"));
    try (AutoCloseable crash = JobFixtures.crashAfterRound0()) {
      assertThrows(IllegalStateException.class, () -> SftTrainJob.run(spark, cfg("crash", "distributed.partitions=2")));
    }
    assertFalse(Files.exists(dir.resolve("crash")));
    SftTrainJob.Result resumed = SftTrainJob.run(spark, cfg("crash", "distributed.partitions=2"));
    assertEquals(List.of(0, 1), resumed.metrics().stream().map(l -> l.get("round").asInt()).toList());
    double d = maxDiff(HfCheckpoint.load(dir.resolve("whole"), DataType.FLOAT),
        HfCheckpoint.load(dir.resolve("crash"), DataType.FLOAT));
    assertTrue(d < 1e-7, "resumed vs uninterrupted: " + d);
  }
}
