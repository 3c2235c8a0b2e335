package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * LoRA DPO and KTO (with adapter dropout, three averaging rounds on two partitions) killed after
 * round 0's checkpoint and rerun in a fresh process end on the uninterrupted run's adapter, and
 * every round's metrics are the uninterrupted run's. The first run's process is the pipeline's:
 * sft-local (its demo base) ran in it before, which leaves the JVM's row-loop threads (Par) at the
 * core count; the rerun's process is fresh (Par at one thread, no cached engines), as when the
 * pipeline is rerun after a kill in round 2's dpo.
 */
class PrefResumeTest extends JobFixture {
  /** Metrics that measure time or the executors, not the training. */
  static final Set<String> TIMING = Set.of("tokens_per_s", "compute_s", "broadcast_aggregate_s", "round_s",
      "model_loads", "executors");
  static Path pairs;
  static Path kto;

  @BeforeAll
  static void setUp() throws Exception {
    LlamaConfig c = new LlamaConfig("llama", 32000, 32, 2, 4, 2, 48, 1e-5, 10000, false, 256, 1, 2);
    open("pref-resume-test", "pref-resume", c);
    Path raw = JobFixtures.preparePairs(spark, dir.resolve("pairs-raw"), model, "val_fraction=0.1");
    pairs = JobFixtures.refLogps(spark, model, raw, dir.resolve("pairs"));
    kto = JobFixtures.refLogps(spark, model, JobFixtures.prepareKto(spark, dir, model, 60, "kto-raw"),
        dir.resolve("kto"));
  }

  @AfterEach
  void freshAfter() {
    JvmState.fresh();
  }

  static Config cfg(Path data, String out, String... extra) throws Exception {
    List<String> s = new ArrayList<>(List.of("model=" + model, "data=" + data, "output=" + dir.resolve(out),
        "lora.r=4", "lora.alpha=8", "lora.dropout=0.1", "train.batch_size=4", "train.seq_len=48", "train.lr=5e-3",
        "train.warmup_steps=1", "train.max_steps=6", "distributed.averaging_frequency=2",
        "distributed.partitions=2", "loss.beta=0.5"));
    s.addAll(List.of(extra));
    return Config.load(null, s);
  }

  /**
   * Runs kind uninterrupted, then killed after round 0 (its checkpoint written) and rerun: the
   * rerun resumes after round 0 and ends on the same adapter (< 1e-7) with the same metrics.
   */
  static void assertResumeIsExact(String kind, Path data, String name, String... extra) throws Exception {
    JvmState.afterSftLocal();
    PrefTrainJob.Result whole = PrefTrainJob.run(spark, cfg(data, name + "-whole", extra), kind);
    assertEquals(List.of(0, 1, 2), rounds(whole.metrics()));
    try (AutoCloseable crash = JobFixtures.crashAfterRound0()) {
      assertThrows(IllegalStateException.class, () -> PrefTrainJob.run(spark, cfg(data, name + "-crash", extra), kind));
    }
    assertFalse(Files.exists(dir.resolve(name + "-crash")), "a killed run writes no output");
    assertTrue(Files.isDirectory(dir.resolve(name + "-crash.checkpoints/round-000000")), "round 0 was checkpointed");

    JvmState.fresh();
    PrefTrainJob.Result resumed = PrefTrainJob.run(spark, cfg(data, name + "-crash", extra), kind);
    assertEquals(List.of(0, 1, 2), rounds(resumed.metrics()), "round 0 from the checkpoint, rounds 1 and 2 run");
    double d = JobFixtures.maxDiff(whole.state().params(), resumed.state().params());
    System.out.printf("%s resumed in a fresh JVM vs uninterrupted: adapter max |diff| %s%n", kind, d);
    assertTrue(d < 1e-7, kind + " resumed vs uninterrupted adapter: max |diff| = " + d);
    for (int r = 0; r < 3; r++) {
      assertSameMetrics(whole.metrics().get(r), resumed.metrics().get(r), kind + " round " + r);
    }
    assertEquals(3, Files.readAllLines(dir.resolve(name + "-crash/metrics.jsonl")).size());
  }

  @Test
  void loraDpoResumedInAFreshProcessEqualsTheUninterruptedRun() throws Exception {
    assertResumeIsExact("dpo", pairs, "dpo");
  }

  @Test
  void loraKtoResumedInAFreshProcessEqualsTheUninterruptedRun() throws Exception {
    assertResumeIsExact("kto", kto, "kto", "loss.type=kto");
  }

  static List<Integer> rounds(List<ObjectNode> metrics) {
    return metrics.stream().map(l -> l.get("round").asInt()).toList();
  }

  /** Every metric but the timings, bit for bit (loss, rewards, log-probs, eval_*, grad_norm, lr, tokens). */
  static void assertSameMetrics(ObjectNode want, ObjectNode got, String where) {
    assertTrue(want.has("loss") && want.has("eval_loss") && want.has("grad_norm"), where + ": " + want);
    for (Iterator<String> it = want.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!TIMING.contains(k)) {
        assertEquals(want.get(k).asDouble(), got.path(k).asDouble(Double.NaN), 0.0, where + ": " + k);
      }
    }
  }
}
