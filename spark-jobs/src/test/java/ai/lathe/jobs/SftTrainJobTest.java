package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.model.train.ShardSampler;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.PrepJob;
import ai.lathe.prep.PreparedRow;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

class SftTrainJobTest extends SftJobFixture {
  @BeforeAll
  static void setUp() throws Exception {
    open("sft-test", "sft", new LlamaConfig("llama", 32000, 64, 2, 4, 2, 96, 1e-5, 10000, false, 512, 1, 2), 96);
  }

  static Config cfg(String name, String... extra) throws Exception {
    List<String> s = new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir.resolve(name),
        "lora.r=4", "lora.alpha=8", "lora.dropout=0.1", "train.batch_size=2", "train.seq_len=96", "train.lr=5e-3",
        "train.warmup_steps=1", "train.max_steps=4", "distributed.averaging_frequency=2", "distributed.eval_every=2"));
    s.addAll(List.of(extra));
    return Config.load(null, s);
  }

  static float[][] params(Path adapter) throws Exception {
    AdapterSet a = PeftAdapter.read(adapter, HfCheckpoint.open(model).config(), DataType.FLOAT);
    return AdapterState.of(a, null).params();
  }

  @Test
  void onePartitionEqualsTheSingleMachineTrainer() throws Exception {
    SftTrainJob.run(spark, cfg("one", "distributed.partitions=1"));
    float[][] spark1 = params(dir.resolve("one"));
    // the single-machine trainer on the same rows (in content-id order, as one partition holds them)
    List<PreparedRow> rows = new ArrayList<>(spark.read().parquet(data + "/data").where("split = 'train'")
        .collectAsList().stream().map(Schemas::fromRow).toList());
    rows.sort(Comparator.comparing(PreparedRow::id));
    List<Tokens> shard = rows.stream().map(PreparedData::tokens).toList();
    SftSettings s = SftSettings.from(cfg("one")).withTotalSteps(4);
    var w = HfCheckpoint.load(model, DataType.FLOAT);
    AdapterSet a = AdapterSet.init(w.config, s.lora(), s.train().seed(), DataType.FLOAT);
    SftTrainer t = new SftTrainer(new LlamaModel(w, a, DataType.FLOAT), s.train());
    ShardSampler<Tokens> sampler = new ShardSampler<>(shard, 0, s.train().seed(), 2, 1);
    for (int step = 0; step < 4; step++) {
      t.step(sampler.microBatches(step));
    }
    float[][] local = AdapterState.of(a, null).params();
    double d = JobFixtures.maxDiff(spark1, local);
    assertTrue(d < 1e-5, "max |Spark − local| = " + d);
    assertTrue(JobFixtures.maxDiff(local, AdapterState.of(AdapterSet.init(w.config, s.lora(), s.train().seed(),
        DataType.FLOAT), null).params()) > 1e-3, "training moved the adapter");
    var run = new ObjectMapper().readTree(dir.resolve("one/lathe-run.json").toFile());
    assertEquals(4, run.path("metrics").path("steps").asInt());
    assertTrue(Files.size(dir.resolve("one/loss.png")) > 1000);
    assertEquals(2, Files.readAllLines(dir.resolve("one/metrics.jsonl")).size());
  }

  @Test
  void resumesAfterACrashWithTheSameResult() throws Exception {
    SftTrainJob.Result full = SftTrainJob.run(spark, cfg("full", "distributed.partitions=2"));
    assertEquals(1, full.modelLoads(), "one executor JVM loads the base model once");
    try (AutoCloseable crash = JobFixtures.crashAfterRound0()) {
      assertThrows(IllegalStateException.class, () -> SftTrainJob.run(spark, cfg("crash", "distributed.partitions=2")));
    }
    assertFalse(Files.exists(dir.resolve("crash")));
    assertTrue(Files.exists(dir.resolve("crash.checkpoints/round-000000/state.json")));
    SftTrainJob.Result resumed = SftTrainJob.run(spark, cfg("crash", "distributed.partitions=2"));
    // the resumed run's metrics keep the round before the crash (from the checkpoint) and add the one it ran
    assertEquals(List.of(0, 1), resumed.metrics().stream().map(l -> l.get("round").asInt()).toList());
    assertEquals(2, Files.readAllLines(dir.resolve("crash/metrics.jsonl")).size());
    assertTrue(JobFixtures.maxDiff(params(dir.resolve("full")), params(dir.resolve("crash"))) < 1e-7);
  }

  /** As above with the rerun in a fresh JVM after a pipeline JVM that ran sft-local (see JvmState). */
  @Test
  void resumedInAFreshJvmEqualsTheUninterruptedRun() throws Exception {
    try {
      JvmState.afterSftLocal();
      SftTrainJob.Result whole = SftTrainJob.run(spark, cfg("jvm-whole", "distributed.partitions=2"));
      try (AutoCloseable crash = JobFixtures.crashAfterRound0()) {
        assertThrows(IllegalStateException.class, () -> SftTrainJob.run(spark, cfg("jvm-crash",
            "distributed.partitions=2")));
      }
      JvmState.fresh();
      SftTrainJob.Result resumed = SftTrainJob.run(spark, cfg("jvm-crash", "distributed.partitions=2"));
      assertEquals(List.of(0, 1), resumed.metrics().stream().map(l -> l.get("round").asInt()).toList());
      double d = JobFixtures.maxDiff(params(dir.resolve("jvm-whole")), params(dir.resolve("jvm-crash")));
      assertTrue(d < 1e-7, "resumed vs uninterrupted: " + d);
      for (int r = 0; r < 2; r++) {
        assertEquals(whole.metrics().get(r).get("train_loss").asDouble(),
            resumed.metrics().get(r).get("train_loss").asDouble(), 0.0, "train_loss of round " + r);
      }
      assertEquals(whole.metrics().get(1).get("val_loss").asDouble(), resumed.metrics().get(1).get("val_loss")
          .asDouble(), 0.0);
    } finally {
      JvmState.fresh();
    }
  }

  @Test
  void badInputFailsBeforeAnyWork() throws Exception {
    var e = assertThrows(IllegalArgumentException.class,
        () -> SftTrainJob.run(spark, cfg("x", "data=" + dir.resolve("nope"))));
    assertTrue(e.getMessage().contains("nope") && e.getMessage().contains("not found"), e.getMessage());
    Path old = dir.resolve("old-data");
    Files.createDirectories(old);
    Files.writeString(old.resolve("manifest.json"), Files.readString(data.resolve("manifest.json"))
        .replace("\"schema_version\" : " + Schemas.SFT_SCHEMA_VERSION, "\"schema_version\" : 99"));
    e = assertThrows(IllegalArgumentException.class, () -> SftTrainJob.run(spark, cfg("x", "data=" + old)));
    assertTrue(e.getMessage().contains("schema_version 99"), e.getMessage());
    Path other = dir.resolve("other-model");
    ai.lathe.model.io.AtomicDir.write(other, tmp -> {
      for (String f : List.of("config.json", "model.safetensors", "tokenizer_config.json")) {
        Files.copy(model.resolve(f), tmp.resolve(f));
      }
      Files.writeString(tmp.resolve("tokenizer.json"), Files.readString(model.resolve("tokenizer.json")) + "\n");
    });
    e = assertThrows(IllegalArgumentException.class, () -> SftTrainJob.run(spark, cfg("x", "model=" + other)));
    assertTrue(e.getMessage().contains("different tokenizer"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("x")));
    assertFalse(Files.exists(dir.resolve("x.checkpoints")));
  }

  @Test
  void trainsOnPackedData() throws Exception {
    Path packed = dir.resolve("packed");
    PrepJob.run(spark, Config.load(null, List.of("input=../data/sample/debian-faq/instructions.jsonl",
        "output=" + packed, "tokenizer=" + model, "max_length=96", "packing=true")));
    SftTrainJob.Result r = SftTrainJob.run(spark, cfg("packed-out", "data=" + packed, "train.max_steps=2",
        "distributed.partitions=2"));
    assertEquals(1, r.metrics().size());
    assertTrue(Double.isFinite(r.metrics().get(0).get("train_loss").asDouble()));
  }

  /**
   * QLoRA: the same SFT on an NF4 base (double-quantised) and with DoRA on it; the validation loss
   * lands within a small margin of the fp32 base's, and the DoRA adapter is written in PEFT's
   * format (use_dora, lora_magnitude_vector) and scores through the engine on the NF4 base.
   */
  @Test
  void sftOnAnNf4BaseWithLoraAndDora() throws Exception {
    String[] common = {"train.max_steps=12", "distributed.averaging_frequency=6", "distributed.eval_every=2",
        "lora.dropout=0.0", "train.lr=2e-2", "lora.target_modules=[all-linear]", "lora.r=8", "lora.alpha=16"};
    double fp32 = last(SftTrainJob.run(spark, cfg("q-fp32", common)));
    double nf4 = last(SftTrainJob.run(spark, cfg("q-nf4", concat(common, "quantize=nf4", "double_quant=true"))));
    double dora = last(SftTrainJob.run(spark, cfg("q-dora", concat(common, "quantize=nf4", "double_quant=true",
        "lora.use_dora=true"))));
    double start = SftTrainer.validationLoss(new LlamaModel(HfCheckpoint.load(model, DataType.FLOAT), null,
        DataType.FLOAT), PreparedData.examples(spark, data.toString(), "validation", List.of()).map(PreparedData::tokens)
        .collect(), 2, 96);
    System.out.printf("validation loss: start %.6f, fp32 %.6f, nf4 %.6f, dora on nf4 %.6f%n", start, fp32, nf4, dora);
    assertTrue(start - fp32 > 0.04, "training must move the loss for the comparison to mean anything");
    assertEquals(fp32, nf4, 0.05 * (start - fp32), "NF4 base vs fp32 base");
    assertEquals(fp32, dora, 0.1 * (start - fp32), "DoRA on NF4 vs LoRA on fp32");
    var cfgJson = new ObjectMapper().readTree(dir.resolve("q-dora/adapter_config.json").toFile());
    assertTrue(cfgJson.get("use_dora").asBoolean());
    try (var st = ai.lathe.model.io.Safetensors.open(dir.resolve("q-dora/adapter_model.safetensors"))) {
      assertTrue(st.has("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"));
    }
    var bad = assertThrows(IllegalArgumentException.class, () -> SftTrainJob.run(spark, cfg("never", "quantize=int3")));
    assertTrue(bad.getMessage().contains("quantize must be none or nf4"), bad.getMessage());
  }

  static double last(SftTrainJob.Result r) {
    return r.metrics().get(r.metrics().size() - 1).get("val_loss").asDouble();
  }

  static String[] concat(String[] a, String... b) {
    String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }
}
