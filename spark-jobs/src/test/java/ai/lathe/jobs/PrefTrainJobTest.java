package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** The DPO and KTO jobs end to end on embedded Spark, their reference handling and bad input. */
class PrefTrainJobTest extends JobFixture {
  static Path pairs;

  @BeforeAll
  static void setUp() throws Exception {
    open("pref-test", "pref", new LlamaConfig("llama", 32000, 32, 1, 4, 2, 48, 1e-5, 10000, false, 256, 1, 2));
    pairs = JobFixtures.preparePairs(spark, dir.resolve("pairs"), model);
  }

  static Config cfg(String data, String out, String... extra) throws Exception {
    List<String> s = new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir.resolve(out),
        "lora.r=4", "lora.alpha=8", "train.batch_size=4", "train.seq_len=48", "train.lr=5e-3", "train.max_steps=4",
        "distributed.averaging_frequency=2", "loss.beta=0.5"));
    s.addAll(List.of(extra));
    return Config.load(null, s);
  }

  @Test
  void dpoOnTheFlyReferenceIsReproducibleAndLogsTrlMetrics() throws Exception {
    PrefTrainJob.Result a = PrefTrainJob.run(spark, cfg(pairs.toString(), "dpo-a", "reference.on_the_fly=true"), "dpo");
    PrefTrainJob.Result b = PrefTrainJob.run(spark, cfg(pairs.toString(), "dpo-b", "reference.on_the_fly=true"), "dpo");
    assertEquals(2, a.metrics().size());
    for (int i = 0; i < a.state().params().length; i++) {
      assertTrue(java.util.Arrays.equals(a.state().params()[i], b.state().params()[i]), "same seed, same adapter " + i);
    }
    ObjectNode last = a.metrics().get(1);
    for (String k : List.of("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
        "logps/chosen", "logps/rejected", "eval_loss", "eval_rewards/accuracies", "tokens_per_s")) {
      assertTrue(last.has(k) && Double.isFinite(last.get(k).asDouble()), k + " in " + last);
    }
    assertEquals(last.get("rewards/chosen").asDouble() - last.get("rewards/rejected").asDouble(),
        last.get("rewards/margins").asDouble(), 1e-9);
    Path out = dir.resolve("dpo-a");
    for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "lathe-run.json", "metrics.jsonl",
        "loss.png", "rewards.png")) {
      assertTrue(Files.exists(out.resolve(f)), f);
    }
    assertEquals(2, Files.readAllLines(out.resolve("metrics.jsonl")).size());
    // the first round starts at the reference: the loss of the untrained policy is log 2
    assertTrue(a.metrics().get(0).get("loss").asDouble() > 0.5, a.metrics().get(0).toString());
  }

  @Test
  void precomputedReferenceColumnsAndBadInput() throws Exception {
    Path ref = JobFixtures.refLogps(spark, model, pairs, dir.resolve("pairs-ref"));
    PrefTrainJob.Result r = PrefTrainJob.run(spark, cfg(ref.toString(), "dpo-pre", "loss.type=ipo"), "dpo");
    assertTrue(Double.isFinite(r.metrics().get(1).get("loss").asDouble()));
    // the reference pass reruns in place (output = data): the same columns again, committed atomically
    List<Row> before = spark.read().parquet(ref + "/data").orderBy("id").collectAsList();
    RefLogpsJob.run(spark, Config.load(null, List.of("model=" + model, "data=" + ref, "output=" + ref)));
    List<Row> after = spark.read().parquet(ref + "/data").orderBy("id").collectAsList();
    assertEquals(before.size(), after.size());
    for (int i = 0; i < before.size(); i++) {
      assertEquals(before.get(i).<Double>getAs("ref_chosen_logp"), after.get(i).<Double>getAs("ref_chosen_logp"), 0.0);
      assertEquals(before.get(i).<Double>getAs("ref_rejected_logp"), after.get(i).<Double>getAs("ref_rejected_logp"),
          0.0);
    }
    assertEquals(before.get(0).schema(), after.get(0).schema());

    // rows without the reference columns
    var e1 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(pairs.toString(), "never1"),
        "dpo"));
    assertTrue(e1.getMessage().contains("ref_chosen_logp") && e1.getMessage().contains("lathe ref-logps"),
        e1.getMessage());

    // reference columns computed with another reference than the job's
    Path other = dir.resolve("other-adapter");
    LlamaConfig mc = HfCheckpoint.open(model).config();
    PeftAdapter.write(other, AdapterSet.init(mc, LoraConfig.of(4, 8, List.of("q_proj", "k_proj", "v_proj", "o_proj")),
        1, DataType.FLOAT), model.toString(), null);
    var e2 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(), "never2",
        "reference.adapter=" + other), "dpo"));
    assertTrue(e2.getMessage().contains("reference log-probs were computed with"), e2.getMessage());

    // a reference adapter whose target modules differ from the policy's
    Path mlp = dir.resolve("mlp-adapter");
    PeftAdapter.write(mlp, AdapterSet.init(mc, LoraConfig.of(4, 8, List.of("gate_proj", "up_proj")), 1,
        DataType.FLOAT), model.toString(), null);
    var e3 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(), "never3",
        "reference.adapter=" + mlp, "reference.on_the_fly=true"), "dpo"));
    assertTrue(e3.getMessage().contains("targets [gate_proj, up_proj]"), e3.getMessage());

    // chosen and rejected with different prompts, and a null reference value
    Path broken = dir.resolve("broken");
    Dataset<Row> df = spark.read().parquet(ref + "/data");
    String victim = df.orderBy("id").first().getString(0);
    var rows = df.javaRDD().map(row -> {
      Object[] v = new Object[row.size()];
      for (int i = 0; i < v.length; i++) {
        v[i] = row.get(i);
      }
      if (row.getString(0).equals(victim)) {
        List<Integer> rj = new ArrayList<>(row.getList(row.fieldIndex("rejected_ids")));
        rj.set(2, rj.get(2) + 1);
        v[row.fieldIndex("rejected_ids")] = scala.jdk.javaapi.CollectionConverters.asScala(rj).toSeq();
      }
      return RowFactory.create(v);
    });
    spark.createDataFrame(rows, df.schema()).write().partitionBy("lang", "split").parquet(broken + "/data");
    Files.copy(ref.resolve("manifest.json"), broken.resolve("manifest.json"));
    var e4 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(broken.toString(),
        "never4"), "dpo"));
    assertTrue(e4.getMessage().contains("row id=" + victim) && e4.getMessage().contains("do not share a prompt")
        && e4.getMessage().contains(".parquet"), e4.getMessage());

    Path nulls = dir.resolve("nulls");
    var nullRows = df.javaRDD().map(row -> {
      Object[] v = new Object[row.size()];
      for (int i = 0; i < v.length; i++) {
        v[i] = row.get(i);
      }
      if (row.getString(0).equals(victim)) {
        v[row.fieldIndex("ref_rejected_logp")] = null;
      }
      return RowFactory.create(v);
    });
    var nullable = new org.apache.spark.sql.types.StructType(java.util.Arrays.stream(df.schema().fields())
        .map(f -> f.name().startsWith("ref_") ? f.copy(f.name(), f.dataType(), true, f.metadata()) : f)
        .toArray(org.apache.spark.sql.types.StructField[]::new));
    spark.createDataFrame(nullRows, nullable).write().partitionBy("lang", "split").parquet(nulls + "/data");
    Files.copy(ref.resolve("manifest.json"), nulls.resolve("manifest.json"));
    var e5 = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(nulls.toString(),
        "never5"), "dpo"));
    assertTrue(e5.getMessage().contains("row id=" + victim + ": field ref_rejected_logp is null"), e5.getMessage());
    for (int i = 1; i <= 5; i++) {
      assertFalse(Files.exists(dir.resolve("never" + i)), "nothing written " + i);
    }
  }

  @Test
  void ktoFromLabelledCompletions() throws Exception {
    Path kto = JobFixtures.prepareKto(spark, dir, model, 120, "kto");
    Path ref = JobFixtures.refLogps(spark, model, kto, dir.resolve("kto-ref"));
    var e = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(), "never-kto"),
        "dpo"));
    assertTrue(e.getMessage().contains("this job reads preference data"), e.getMessage());
    PrefTrainJob.Result r = PrefTrainJob.run(spark, cfg(ref.toString(), "kto-out", "loss.type=kto",
        "loss.undesirable_weight=1.2"), "kto");
    ObjectNode last = r.metrics().get(1);
    for (String k : List.of("loss", "kl", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen",
        "logps/rejected", "eval_loss")) {
      assertTrue(last.has(k) && Double.isFinite(last.get(k).asDouble()), k + " in " + last);
    }
    assertTrue(Files.exists(dir.resolve("kto-out/adapter_model.safetensors")));
  }

  /** DPO with DoRA on an NF4 base, against reference log-probs computed on the same NF4 base. */
  @Test
  void dpoOnAnNf4BaseWithDora() throws Exception {
    Path ref = JobFixtures.refLogps(spark, model, pairs, dir.resolve("pairs-ref-nf4"), "quantize=nf4",
        "double_quant=true");
    var e = assertThrows(IllegalArgumentException.class, () -> PrefTrainJob.run(spark, cfg(ref.toString(),
        "never-nf4"), "dpo"));
    assertTrue(e.getMessage().contains("held as 'nf4-dq'"), e.getMessage());
    PrefTrainJob.Result r = PrefTrainJob.run(spark, cfg(ref.toString(), "dpo-nf4", "quantize=nf4", "double_quant=true",
        "lora.use_dora=true"), "dpo");
    assertTrue(Double.isFinite(r.metrics().get(1).get("eval_rewards/margins").asDouble()));
    assertTrue(new ObjectMapper().readTree(dir.resolve("dpo-nf4/adapter_config.json").toFile()).get("use_dora")
        .asBoolean());
    // the first step starts at the reference: log 2 exactly when the policy is the reference
    assertTrue(Math.abs(r.metrics().get(0).get("loss").asDouble() - Math.log(2)) < 0.2, r.metrics().get(0).toString());
  }
}
