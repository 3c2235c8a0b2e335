package ai.lathe.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.jobs.PrefTrainJob;
import ai.lathe.jobs.RefLogpsJob;
import ai.lathe.model.Config;
import ai.lathe.prep.PrepJob;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The reference pass and DPO (DoRA on an NF4 base, with a named reference adapter) across
 * executor JVMs on local-cluster[2,1,1024]: the same reference columns and the same adapter as an
 * in-process local[2] run.
 */
@Tag("slow")
class MultiJvmPrefTest {
  static Config dpo(Path dir, Path model, Path data, String name) throws Exception {
    return Config.load(null, List.of("model=" + model, "data=" + data, "output=" + dir.resolve(name),
        "reference.adapter=" + dir.resolve("sft-ref"), "quantize=nf4", "double_quant=true", "lora.use_dora=true",
        "lora.r=4", "lora.alpha=8", "lora.target_modules=[q_proj, k_proj, v_proj, o_proj]", "train.batch_size=2",
        "train.seq_len=96", "train.lr=5e-3", "train.max_steps=4", "distributed.averaging_frequency=2",
        "distributed.partitions=2"));
  }

  @Test
  void referencePassAndDpoAcrossExecutorJvmsMatchLocal() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "mjvm-pref");
    Path model = Fixtures.tiny(dir);
    Path pairs = dir.resolve("pairs");
    SparkSession local = Fixtures.session("local[2]").getOrCreate();
    float[][] localParams;
    try {
      PrepJob.run(local, Config.load(null, List.of("input=" + Fixtures.ROOT.resolve(
          "data/sample/debian-faq/instructions.jsonl"), "output=" + pairs, "tokenizer=" + model, "max_length=96",
          "kind=preference", "pair_rejected=shuffled", "max_reject_fraction=1.0")));
      // a named reference adapter standing in for an SFT adapter: LoRA with B != 0
      var ref = ai.lathe.model.adapter.AdapterSet.init(ai.lathe.model.io.HfCheckpoint.open(model).config(),
          ai.lathe.model.adapter.LoraConfig.of(2, 4, List.of("q_proj", "k_proj", "v_proj", "o_proj")), 3,
          org.nd4j.linalg.api.buffer.DataType.FLOAT);
      java.util.Random rng = new java.util.Random(5);
      for (var p : ref.params()) {
        for (long i = 0; p.name().contains("lora_B") && i < p.value().length(); i++) {
          p.value().putScalar(i, 0.1 * rng.nextGaussian());
        }
      }
      ai.lathe.model.io.PeftAdapter.write(dir.resolve("sft-ref"), ref, model.toString(), null);
      RefLogpsJob.run(local, Config.load(null, List.of("model=" + model, "data=" + pairs, "output=" + dir.resolve(
          "ref-local"), "reference.adapter=" + dir.resolve("sft-ref"), "quantize=nf4", "double_quant=true")));
      localParams = PrefTrainJob.run(local, dpo(dir, model, dir.resolve("ref-local"), "dpo-local"), "dpo").state()
          .params();
    } finally {
      local.stop();
    }
    SparkSession cluster = Fixtures.session("local-cluster[2,1,1024]").getOrCreate();
    try {
      RefLogpsJob.run(cluster, Config.load(null, List.of("model=" + model, "data=" + pairs, "output=" + dir.resolve(
          "ref-cluster"), "reference.adapter=" + dir.resolve("sft-ref"), "quantize=nf4", "double_quant=true")));
      List<Row> a = cluster.read().parquet(dir.resolve("ref-local/data").toString()).orderBy("id").collectAsList();
      List<Row> b = cluster.read().parquet(dir.resolve("ref-cluster/data").toString()).orderBy("id").collectAsList();
      assertEquals(a.size(), b.size());
      for (int i = 0; i < a.size(); i++) {
        assertEquals(a.get(i).<Double>getAs("ref_chosen_logp"), b.get(i).<Double>getAs("ref_chosen_logp"), 1e-4);
        assertEquals(a.get(i).<Double>getAs("ref_rejected_logp"), b.get(i).<Double>getAs("ref_rejected_logp"), 1e-4);
      }
      PrefTrainJob.Result r = PrefTrainJob.run(cluster, dpo(dir, model, dir.resolve("ref-local"), "dpo-cluster"), "dpo");
      double d = 0;
      for (int i = 0; i < localParams.length; i++) {
        for (int j = 0; j < localParams[i].length; j++) {
          d = Math.max(d, Math.abs(localParams[i][j] - r.state().params()[i][j]));
        }
      }
      assertTrue(d < 1e-6, "max |local-cluster − local| = " + d);
      // the executors did the work: every DPO round ran in both executor JVMs at once
      assertTrue(!r.metrics().isEmpty());
      r.metrics().forEach(m -> assertEquals(2, m.get("executors").asInt(), m.toString()));
    } finally {
      cluster.stop();
    }
  }
}
