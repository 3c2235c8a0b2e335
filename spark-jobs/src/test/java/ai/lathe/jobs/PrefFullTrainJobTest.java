package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.ShardSampler;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * dpo and kto with train.mode full: one partition equals the single-machine trainer, a crashed and
 * resumed run equals an uninterrupted one, the output is a Hugging Face model folder, the reference
 * is the frozen starting weights, and bad input (NF4 base, a freeze pattern naming nothing, a
 * starting adapter) is one clear error with nothing written.
 */
class PrefFullTrainJobTest extends JobFixture {
  static Path pairs;
  static Path ref;
  static final LlamaConfig CONFIG = new LlamaConfig("llama", 32000, 32, 2, 4, 2, 48, 1e-5, 10000, false, 256, 1, 2);

  @BeforeAll
  static void setUp() throws Exception {
    open("pref-full-test", "pref-full", CONFIG);
    pairs = JobFixtures.preparePairs(spark, dir.resolve("pairs"), model, "val_fraction=0.1");
    ref = JobFixtures.refLogps(spark, model, pairs, dir.resolve("pairs-ref"));
  }

  static Config cfg(String data, String out, String... extra) throws Exception {
    List<String> s = new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir.resolve(out),
        "train.mode=full", "train.freeze=[layers\\.1\\.mlp\\.up_proj]", "train.batch_size=4", "train.seq_len=48",
        "train.lr=2e-3", "train.warmup_steps=1", "train.max_steps=4", "train.weight_decay=0.01",
        "distributed.averaging_frequency=2", "loss.beta=0.5"));
    s.addAll(List.of(extra));
    return Config.load(null, s);
  }

  @Test
  void onePartitionEqualsTheSingleMachineTrainer() throws Exception {
    PrefTrainJob.Result r = PrefTrainJob.run(spark, cfg(ref.toString(), "one", "distributed.partitions=1"), "dpo");
    Path out = dir.resolve("one");
    for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "lathe-run.json", "metrics.jsonl",
        "loss.png", "rewards.png")) {
      assertTrue(Files.exists(out.resolve(f)), f);
    }
    assertFalse(Files.exists(out.resolve("adapter_config.json")));
    // the first step starts at the reference (the base): loss log 2
    assertEquals(Math.log(2), r.metrics().get(0).get("loss").asDouble(), 0.05, r.metrics().get(0).toString());
    LlamaWeights spark1 = HfCheckpoint.load(out, DataType.FLOAT);

    List<Row> rows = new ArrayList<>(spark.read().parquet(ref + "/data").where("split = 'train'").collectAsList());
    rows.sort(Comparator.comparing(x -> x.<String>getAs("id")));
    List<DpoTrainer.Pair> shard = rows.stream().map(PrefData::pair).toList();
    PrefSettings s = PrefSettings.from(cfg(ref.toString(), "one"), "dpo").withTotalSteps(4);
    LlamaWeights w = HfCheckpoint.load(model, DataType.FLOAT);
    LlamaModel m = new LlamaModel(w, null, DataType.FLOAT);
    s.mode().attach(m);
    DpoTrainer t = new DpoTrainer(m, s.train().withSeed(ShardSampler.partitionSeed(s.train().seed(), 0)), "sigmoid",
        0.5, 0.0);
    ShardSampler<DpoTrainer.Pair> sampler = new ShardSampler<>(shard, 0, s.train().seed(), 4, 1);
    for (int step = 0; step < 4; step++) {
      t.step(sampler.microBatches(step));
    }
    double d = SftFullTrainJobTest.maxDiff(spark1, w);
    assertTrue(d < 1e-5, "max |Spark − local| = " + d);
    LlamaWeights base = HfCheckpoint.load(model, DataType.FLOAT);
    assertTrue(SftFullTrainJobTest.maxDiff(w, base) > 1e-3, "training moved the weights");
    assertEquals(0.0, w.layers[1].up().dense().sub(base.layers[1].up().dense()).amaxNumber().doubleValue(),
        "the frozen tensor is the base's, bit for bit");
    JsonNode run = new ObjectMapper().readTree(out.resolve("lathe-run.json").toFile());
    assertEquals("full", run.at("/config/train/mode").asText(run.toString()), run.toString());
  }

  @Test
  void resumesAfterACrashWithTheSameResult() throws Exception {
    PrefTrainJob.run(spark, cfg(ref.toString(), "whole", "distributed.partitions=2"), "dpo");
    try (AutoCloseable crash = JobFixtures.crashAfterRound0()) {
      assertThrows(IllegalStateException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(), "crash",
          "distributed.partitions=2"), "dpo"));
    }
    assertFalse(Files.exists(dir.resolve("crash")));
    PrefTrainJob.Result resumed = PrefTrainJob.run(spark, cfg(ref.toString(), "crash", "distributed.partitions=2"),
        "dpo");
    assertEquals(List.of(0, 1), resumed.metrics().stream().map(l -> l.get("round").asInt()).toList());
    double d = SftFullTrainJobTest.maxDiff(HfCheckpoint.load(dir.resolve("whole"), DataType.FLOAT),
        HfCheckpoint.load(dir.resolve("crash"), DataType.FLOAT));
    assertTrue(d < 1e-7, "resumed vs uninterrupted: " + d);
  }

  /**
   * KTO in full mode on a BF16 base (held in 16 bits, trained as F32 master weights), its
   * reference log-probs computed on the fly from the frozen start.
   */
  @Test
  void ktoFullWithTheReferenceOnTheFly() throws Exception {
    Path kto = JobFixtures.prepareKto(spark, dir, model, 60, "kto");
    Path bf16 = dir.resolve("model-bf16");
    RandomLlama.write(bf16, CONFIG, 1, "BF16", JobFixtures.TOKENIZER);
    PrefTrainJob.Result r = PrefTrainJob.run(spark, cfg(kto.toString(), "kto-full", "loss.type=kto",
        "reference.on_the_fly=true", "distributed.partitions=2", "model=" + bf16), "kto");
    ObjectNode first = r.metrics().get(0);
    for (String k : List.of("loss", "kl", "rewards/chosen", "rewards/rejected", "logps/chosen")) {
      assertTrue(first.has(k) && Double.isFinite(first.get(k).asDouble()), k + " in " + first);
    }
    assertTrue(Files.exists(dir.resolve("kto-full/model.safetensors")));
    assertTrue(SftFullTrainJobTest.maxDiff(HfCheckpoint.load(dir.resolve("kto-full"), DataType.DOUBLE),
        HfCheckpoint.load(bf16, DataType.DOUBLE)) > 1e-3, "training moved the weights");
    assertEquals("float32", new ObjectMapper().readTree(dir.resolve("kto-full/config.json").toFile())
        .get("torch_dtype").asText(), "written as F32 master weights");
  }

  @Test
  void badInputIsOneClearErrorAndWritesNothing() throws Exception {
    var e1 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(), "never1",
        "quantize=nf4"), "dpo"));
    assertTrue(e1.getMessage().contains("is held as Nf4Linear") && e1.getMessage().contains("cannot be trained in full"),
        e1.getMessage());
    var e2 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(), "never2",
        "train.freeze=[embed_token$]"), "dpo"));
    assertTrue(e2.getMessage().contains("train.freeze: 'embed_token$' matches no tensor"), e2.getMessage());
    var e3 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(), "never3",
        "adapter=" + dir.resolve("some-adapter")), "dpo"));
    assertTrue(e3.getMessage().contains("does not apply to train.mode full"), e3.getMessage());
    var e4 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(), "never4",
        "lora.type=adalora"), "kto"));
    assertTrue(e4.getMessage().contains("lora.type adalora does not apply to train.mode full"), e4.getMessage());
    for (int i = 1; i <= 4; i++) {
      assertFalse(Files.exists(dir.resolve("never" + i)), "nothing written " + i);
      assertFalse(Files.exists(dir.resolve("never" + i + ".checkpoints")), "no checkpoint " + i);
    }
  }
}
