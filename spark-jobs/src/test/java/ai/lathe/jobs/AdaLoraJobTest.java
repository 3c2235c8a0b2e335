package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.adapter.AdaLoraModule;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.model.train.ShardSampler;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.PreparedRow;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** AdaLoRA in the distributed SFT job: equal to the single-machine trainer, exact resume, PEFT output. */
class AdaLoraJobTest extends SftJobFixture {
  @BeforeAll
  static void setUp() throws Exception {
    open("adalora-test", "adalora", new LlamaConfig("llama", 32000, 64, 2, 4, 2, 96, 1e-5, 10000, false, 512, 1, 2), 96);
  }

  /** 6 steps: tinit 1, budget falls over steps 2..4, final allocation at step 5 (total − tfinal). */
  static Config cfg(String name, String... extra) throws Exception {
    List<String> s = new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir.resolve(name),
        "lora.type=adalora", "lora.init_r=4", "lora.target_r=2", "lora.tinit=1", "lora.tfinal=1", "lora.alpha=8",
        "lora.target_modules=[q_proj, v_proj, down_proj]", "train.batch_size=2", "train.seq_len=96",
        "train.lr=5e-3", "train.warmup_steps=1", "train.max_steps=6", "distributed.eval_every=0"));
    s.addAll(List.of(extra));
    return Config.load(null, s);
  }

  /** The kept-rank masks of a state (its adalora.kept tensors). */
  static List<String> masks(AdapterState s) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < s.names().length; i++) {
      if (s.names()[i].endsWith(".adalora.kept")) {
        out.add(s.names()[i] + java.util.Arrays.toString(s.params()[i]));
      }
    }
    return out;
  }

  /**
   * One partition with one step per round equals the single-machine trainer (PEFT's per-step
   * allocation): the same weights, importance EMAs and masks; the output is PEFT's AdaLoRA folder
   * with the final budget, the budget report and heat map, and the LoRA export.
   */
  @Test
  void onePartitionEqualsTheSingleMachineTrainerAndWritesPeftAdaLora() throws Exception {
    SftTrainJob.Result r = SftTrainJob.run(spark, cfg("one", "distributed.partitions=1",
        "distributed.averaging_frequency=1", "lora.export_lora=true"));
    List<PreparedRow> rows = new ArrayList<>(spark.read().parquet(data + "/data").where("split = 'train'")
        .collectAsList().stream().map(Schemas::fromRow).toList());
    rows.sort(Comparator.comparing(PreparedRow::id));
    List<Tokens> shard = rows.stream().map(PreparedData::tokens).toList();
    SftSettings s = SftSettings.from(cfg("one")).withTotalSteps(6);
    var w = HfCheckpoint.load(model, DataType.FLOAT);
    AdapterSet a = AdapterSet.init(w.config, s.lora(), s.train().seed(), DataType.FLOAT);
    SftTrainer t = new SftTrainer(new LlamaModel(w, a, DataType.FLOAT), s.train());
    ShardSampler<Tokens> sampler = new ShardSampler<>(shard, 0, s.train().seed(), 2, 1);
    List<Integer> kept = new ArrayList<>();
    for (int step = 0; step < 6; step++) {
      t.step(sampler.microBatches(step));
      kept.add(t.adaLora().keptTotal());
    }
    // 6 modules × init_r 4 = 24 ranks; PEFT's budget ⌊12·(1 − (s−1)/4)³ + 12⌋: 24 to step 1, then 17, 13, 12, final 12
    assertEquals(List.of(24, 24, 17, 13, 12, 12), kept);
    AdapterState local = AdapterState.of(a, null);
    double d = JobFixtures.maxDiff(r.state().params(), local.params());
    assertTrue(d < 1e-5, "max |Spark − local| = " + d);
    assertEquals(masks(local), masks(r.state()));

    Path out = dir.resolve("one");
    JsonNode cfg = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
    assertEquals("ADALORA", cfg.get("peft_type").asText());
    assertEquals(6, cfg.get("rank_pattern").size());
    assertEquals(6, cfg.get("total_step").asInt(), "PEFT needs total_step > 0 to load the folder");
    JsonNode budget = new ObjectMapper().readTree(out.resolve("adalora-budget.json").toFile());
    assertEquals(12, budget.get("kept_total").asInt());
    assertTrue(Files.size(out.resolve("adalora-budget.png")) > 500);
    AdapterSet back = PeftAdapter.read(out, w.config, DataType.FLOAT);
    AdapterSet exported = PeftAdapter.read(out.resolve("lora"), w.config, DataType.FLOAT);
    var b = ai.lathe.model.Batch.of(List.of(shard.get(0).ids(), shard.get(1).ids()), new int[] {1, 1}, 96, 0);
    double[] ref = new LlamaModel(w, a, DataType.FLOAT).sequenceLogProbs(b);
    double[] viaAda = new LlamaModel(w, back, DataType.FLOAT).sequenceLogProbs(b);
    double[] viaLora = new LlamaModel(w, exported, DataType.FLOAT).sequenceLogProbs(b);
    for (int i = 0; i < ref.length; i++) {
      assertEquals(ref[i], viaAda[i], 1e-4 * Math.max(1, Math.abs(ref[i])));
      assertEquals(viaAda[i], viaLora[i], 1e-5 * Math.max(1, Math.abs(ref[i])));
    }
    int ranks = 0;
    for (AdaLoraModule m : a.adaLoraModules()) {
      ranks += m.keptCount();
    }
    assertEquals(12, ranks);
  }

  /** Two partitions, two steps a round: a run killed after round 0 and resumed ends on the same adapter, EMAs and masks. */
  @Test
  void resumesAfterACrashWithTheSameAdapterAndMasks() throws Exception {
    String[] common = {"distributed.partitions=2", "distributed.averaging_frequency=2"};
    SftTrainJob.Result full = SftTrainJob.run(spark, cfg("full", common));
    try (AutoCloseable crash = JobFixtures.crashAfterRound0()) {
      assertThrows(IllegalStateException.class, () -> SftTrainJob.run(spark, cfg("crash", common)));
    }
    SftTrainJob.Result resumed = SftTrainJob.run(spark, cfg("crash", common));
    assertEquals(List.of(0, 1, 2), resumed.metrics().stream().map(l -> l.get("round").asInt()).toList());
    assertTrue(JobFixtures.maxDiff(full.state().params(), resumed.state().params()) < 1e-7);
    assertEquals(masks(full.state()), masks(resumed.state()));
    int kept = 0;
    for (String m : masks(full.state())) {
      kept += m.split("1\\.0", -1).length - 1;
    }
    assertEquals(12 + 6, kept, "12 kept ranks (final budget) plus the 6 'decided' flags");
  }
}
