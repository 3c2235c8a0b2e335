package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * KTO learns on held-out prompts: data unpaired the way TRL unpairs preference data (every
 * prompt twice, its rule-following completion desirable, a random one undesirable), trained in
 * the job's data order; the implicit reward (policy − reference log-prob) must then rank the
 * desirable completion of unseen prompts above the undesirable one, and the held-out margins
 * must rise from 0.
 */
class KtoTrainerTest {
  /** The pairs of DpoTrainerTest (chosen follows the rule), unpaired into labelled completions. */
  static List<KtoTrainer.Example> unpaired(List<DpoTrainer.Pair> pairs) {
    List<KtoTrainer.Example> out = new ArrayList<>();
    for (DpoTrainer.Pair p : pairs) {
      out.add(new KtoTrainer.Example(p.chosen(), p.chosenStart(), true, p.refChosen()));
      out.add(new KtoTrainer.Example(p.rejected(), p.rejectedStart(), false, p.refRejected()));
    }
    return out;
  }

  @Test
  void heldOutRewardsSeparateDesirableFromUndesirable() {
    LlamaConfig c = new LlamaConfig("llama", 50, 32, 2, 4, 2, 48, 1e-5, 10000, false, 64, 1, 2);
    var w = RandomLlama.create(c, 1, 0.1, 0.0, DataType.FLOAT);
    AdapterSet a = AdapterSet.init(c, new LoraConfig(8, 16, List.of("all-linear"), 0.0, false, false, Map.of(),
        Map.of()), 3, DataType.FLOAT);
    LlamaModel m = new LlamaModel(w, a, DataType.FLOAT);
    LlamaModel reference = new LlamaModel(w, null, DataType.FLOAT);
    SftTrainer.Options o = new SftTrainer.Options(8, 1, 16, 5e-3, 2, 60, 0.1, 0.0, 1.0, 5);
    List<DpoTrainer.Pair> heldPairs = DpoTrainerTest.pairs(32, 2, m, o);
    List<KtoTrainer.Example> train = unpaired(DpoTrainerTest.pairs(64, 1, m, o));
    List<KtoTrainer.Example> held = unpaired(heldPairs);
    KtoTrainer t = new KtoTrainer(m, reference, o, 0.5, 1.0, 1.0);
    MetricSums before = t.evaluate(held, 8);
    assertEquals(0, before.mean("rewards/chosen") - before.mean("rewards/rejected"), 1e-9, "policy = reference");
    assertFalse(before.means().containsKey("rewards/accuracies"), "KTO defines no accuracies");
    // the job's data order: a prompt's completions together, prompts shuffled
    @SuppressWarnings({"unchecked", "rawtypes"})
    ShardSampler<KtoTrainer.Example> sampler = new ShardSampler<>(train, 0, o.seed(), 8, 1,
        x -> x.prompt(), KtoTrainer.Example.ORDER);
    double first = t.step(sampler.microBatches(0)).metrics().mean("loss");
    List<Double> margins = new ArrayList<>();
    for (int s = 1; s < 60; s++) {
      t.step(sampler.microBatches(s));
      if (s % 20 == 19) {
        MetricSums e = t.evaluate(held, 8);
        margins.add(e.mean("rewards/chosen") - e.mean("rewards/rejected"));
      }
    }
    // implicit rewards on the held-out prompts, pair by pair
    double[][] lp = new DpoTrainer(m, o, "sigmoid", 0.5, 0).logProbs(heldPairs);
    int right = 0;
    for (int i = 0; i < heldPairs.size(); i++) {
      right += lp[0][i] - heldPairs.get(i).refChosen() > lp[1][i] - heldPairs.get(i).refRejected() ? 1 : 0;
    }
    double acc = right / (double) heldPairs.size();
    assertTrue(Math.abs(first - 0.5) < 0.05, "KTO starts at 0.5 (policy = reference, KL 0): " + first);
    assertTrue(acc > 0.8, "held-out implicit-reward accuracy " + acc);
    assertTrue(margins.get(0) > 0 && margins.get(margins.size() - 1) > margins.get(0),
        "held-out margins rise: " + margins);
  }

  @Test
  void mismatchedPairsNeverPairAPromptWithItsOwnCompletion() {
    int[] p1d = {1, 5, 6, 7, 8};
    int[] p1u = {1, 5, 6, 9, 9};
    int[] p2d = {1, 4, 7, 7};
    int[] p2u = {1, 4, 3, 3};
    List<KtoTrainer.Example> mb = List.of(new KtoTrainer.Example(p1d, 3, true, 0),
        new KtoTrainer.Example(p1u, 3, false, 0), new KtoTrainer.Example(p2d, 2, true, 0),
        new KtoTrainer.Example(p2u, 2, false, 0));
    int[] starts = new int[4];
    List<int[]> kl = KtoTrainer.mismatched(mb, starts);
    // prompt 1 takes prompt 2's completions and vice versa (the nearest earlier other prompt, cyclically)
    assertEquals(List.of(1, 5, 6, 3, 3), java.util.Arrays.stream(kl.get(0)).boxed().toList());
    assertEquals(List.of(1, 5, 6, 3, 3), java.util.Arrays.stream(kl.get(1)).boxed().toList());
    assertEquals(List.of(1, 4, 9, 9), java.util.Arrays.stream(kl.get(2)).boxed().toList());
    assertEquals(List.of(1, 4, 9, 9), java.util.Arrays.stream(kl.get(3)).boxed().toList());
    assertEquals(3, starts[0]);
    assertEquals(2, starts[3]);
  }
}
