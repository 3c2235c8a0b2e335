package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.TrainableWeights;
import ai.lathe.model.adapter.Param;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * DPO and KTO with train.mode full: the whole preference path (policy forward, loss, per-token
 * weights, engine backward into every weight) against central finite differences of the loss in
 * double, for a few entries of every weight kind (embedding, norms, each projection, biases, the
 * head), untied and tied; and full DPO learns a rule that generalises to held-out pairs.
 */
class PreferenceFullTest {
  static final LlamaConfig UNTIED = new LlamaConfig("llama", 41, 16, 2, 4, 2, 24, 1e-5, 10000, false, 64, 1, 2);
  static final LlamaConfig TIED = new LlamaConfig("llama", 41, 16, 2, 4, 2, 24, 1e-5, 10000, true, 64, 1, 2);
  static final LlamaConfig QWEN2 = LlamaConfig.family("qwen2", 41, 16, 2, 4, 2, 24, 0, 1000000.0, false, 64, 0);
  static final SftTrainer.Options O = new SftTrainer.Options(2, 1, 32, 1e-3, 0, 10, 0, 0, 0, 1);

  /** A model whose own weights train (double), and a frozen copy of its starting weights. */
  static LlamaModel[] policyAndReference(LlamaConfig c, long seed) {
    LlamaWeights w = RandomLlama.create(c, seed, 0.3, 0.2, DataType.DOUBLE);
    LlamaModel ref = new LlamaModel(TrainableWeights.copyOf(w), null, DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, null, DataType.DOUBLE);
    m.setTrainable(TrainableWeights.of(w, List.of()));
    // the policy has moved away from the reference (else KTO's KL estimate is 0)
    Random r = new Random(seed + 1);
    for (Param p : m.params()) {
      for (long i = 0; i < p.value().length(); i++) {
        p.value().putScalar(i, p.value().getDouble(i) + 0.05 * r.nextGaussian());
      }
    }
    return new LlamaModel[] {m, ref};
  }

  static int[] seq(Random r, int len, int vocab) {
    int[] s = new int[len];
    s[0] = 1;
    for (int i = 1; i < len; i++) {
      s[i] = 2 + r.nextInt(vocab - 2);
    }
    return s;
  }

  /** Entries to check: the first and last, three random ones, and (embedding) a row of a token seen. */
  static Set<Long> entries(Param p, int seenToken, int dim, Random r) {
    Set<Long> idx = new TreeSet<>(List.of(0L, p.value().length() - 1));
    for (int k = 0; k < 3; k++) {
      idx.add((long) r.nextInt((int) p.value().length()));
    }
    if (p.name().equals("model.embed_tokens.weight")) {
      idx.add((long) seenToken * dim + 3);
    }
    return idx;
  }

  /** Checks a few entries of every trainable weight; returns the weight kinds checked (layer index dropped). */
  static <E> Set<String> check(PreferenceTrainer<E> t, LlamaModel m, List<E> ex, int seenToken, String what) {
    double l0 = PreferenceGradientTest.loss(t, m, ex, true);
    assertTrue(Double.isFinite(l0), what);
    List<INDArray> g = new ArrayList<>();
    for (Param p : m.params()) {
      g.add(p.grad().dup());
    }
    Set<String> kinds = new TreeSet<>();
    Random r = new Random(9);
    double h = 1e-6;
    int nonzero = 0;
    for (int pi = 0; pi < m.params().size(); pi++) {
      Param p = m.params().get(pi);
      for (long i : entries(p, seenToken, m.config().hiddenSize(), r)) {
        double v = p.value().getDouble(i);
        p.value().putScalar(i, v + h);
        double lp = PreferenceGradientTest.loss(t, m, ex, false);
        p.value().putScalar(i, v - h);
        double lm = PreferenceGradientTest.loss(t, m, ex, false);
        p.value().putScalar(i, v);
        double fd = (lp - lm) / (2 * h);
        double an = g.get(pi).getDouble(i);
        double err = Math.abs(fd - an) / Math.max(1e-4, Math.abs(fd) + Math.abs(an));
        assertTrue(err < 1e-4, what + " " + p.name() + "[" + i + "]: analytic " + an + " vs finite difference " + fd);
        nonzero += Math.abs(an) > 1e-7 ? 1 : 0;
      }
      kinds.add(p.name().replaceAll("layers\\.\\d+\\.", ""));
    }
    assertTrue(nonzero > m.params().size(), what + ": too few non-zero gradients to mean anything: " + nonzero);
    return kinds;
  }

  static final List<String> EVERY_KIND = List.of("model.embed_tokens.weight", "model.input_layernorm.weight",
      "model.post_attention_layernorm.weight", "model.self_attn.q_proj.weight", "model.self_attn.k_proj.weight",
      "model.self_attn.v_proj.weight", "model.self_attn.o_proj.weight", "model.mlp.gate_proj.weight",
      "model.mlp.up_proj.weight", "model.mlp.down_proj.weight", "model.norm.weight");

  static List<DpoTrainer.Pair> pairs(Random r, int vocab) {
    List<DpoTrainer.Pair> pairs = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      int[] c = seq(r, 9 + i, vocab);
      int[] j = seq(r, 7 + 2 * i, vocab);
      System.arraycopy(c, 0, j, 0, 4); // shared 4-token prompt
      pairs.add(new DpoTrainer.Pair(c, 4, j, 4, -30 + r.nextGaussian(), -28 + r.nextGaussian()));
    }
    return pairs;
  }

  @Test
  void dpoGradientOfEveryWeightKindUntiedTiedAndBiased() {
    for (LlamaConfig c : List.of(UNTIED, TIED, QWEN2)) {
      for (String type : List.of("sigmoid", "ipo")) {
        LlamaModel m = policyAndReference(c, 3)[0];
        List<DpoTrainer.Pair> pairs = pairs(new Random(5), c.vocabSize());
        Set<String> kinds = check(new DpoTrainer(m, O, type, 0.5, type.equals("ipo") ? 0 : 0.1), m, pairs,
            pairs.get(0).chosen()[2], c.modelType() + " tied=" + c.tieWordEmbeddings() + " " + type);
        assertTrue(kinds.containsAll(EVERY_KIND), kinds.toString());
        assertEquals(!c.tieWordEmbeddings(), kinds.contains("lm_head.weight"), "a separate head only when untied");
        assertEquals(c.modelType().equals("qwen2"), kinds.contains("model.self_attn.q_proj.bias"), kinds.toString());
      }
    }
  }

  @Test
  void ktoGradientOfEveryWeightKindWithTheKlTermAgainstTheFrozenStart() {
    for (LlamaConfig c : List.of(UNTIED, TIED)) {
      Random r = new Random(6);
      List<KtoTrainer.Example> ex = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        ex.add(new KtoTrainer.Example(seq(r, 8 + i, c.vocabSize()), 3 + i % 2, i % 3 != 1, -25 + 2 * r.nextGaussian()));
      }
      // the KL estimate is clipped at 0: the first seed whose moved policy gives a positive one
      LlamaModel m = null;
      KtoTrainer t = null;
      MetricSums s = new MetricSums();
      for (long seed = 4; seed < 40 && !(s.mean("kl") > 0); seed++) {
        LlamaModel[] pr = policyAndReference(c, seed);
        m = pr[0];
        t = new KtoTrainer(m, pr[1], O, 0.5, 1.0, 1.33);
        s = new MetricSums();
        t.micro(ex, false, 1, 0, s);
      }
      assertTrue(s.mean("kl") > 0, "the policy has moved from its frozen start: kl " + s.mean("kl"));
      t.fixedKl = s.mean("kl"); // TRL detaches the KL estimate: finite differences hold it fixed
      Set<String> kinds = check(t, m, ex, ex.get(0).ids()[1], "kto tied=" + c.tieWordEmbeddings());
      assertTrue(kinds.containsAll(EVERY_KIND), kinds.toString());
    }
  }

  /** Pairs whose chosen completions follow a fixed rule (next = 7·prev + 3 mod 40) and rejected ones do not. */
  static List<DpoTrainer.Pair> rulePairs(int n, long seed) {
    Random r = new Random(seed);
    List<DpoTrainer.Pair> raw = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] c = new int[8];
      int[] j = new int[8];
      c[0] = j[0] = 1;
      for (int t = 1; t < 4; t++) {
        c[t] = j[t] = 3 + r.nextInt(40);
      }
      for (int t = 4; t < 8; t++) {
        c[t] = (c[t - 1] * 7 + 3) % 40 + 3;
        j[t] = 3 + r.nextInt(40);
      }
      raw.add(new DpoTrainer.Pair(c, 4, j, 4, 0, 0));
    }
    return raw;
  }

  /** The same pairs with reference log-probs from scorer (precomputed once, as lathe ref-logps does). */
  static List<DpoTrainer.Pair> withReference(List<DpoTrainer.Pair> raw, DpoTrainer scorer) {
    double[][] lp = scorer.logProbs(raw);
    List<DpoTrainer.Pair> out = new ArrayList<>();
    for (int i = 0; i < raw.size(); i++) {
      DpoTrainer.Pair p = raw.get(i);
      out.add(new DpoTrainer.Pair(p.chosen(), p.chosenStart(), p.rejected(), p.rejectedStart(), lp[0][i], lp[1][i]));
    }
    return out;
  }

  @Test
  void fullDpoRaisesHeldOutRewardAccuracyAndKeepsFrozenTensors() {
    LlamaConfig c = new LlamaConfig("llama", 50, 32, 2, 4, 2, 48, 1e-5, 10000, false, 64, 1, 2);
    LlamaWeights w = RandomLlama.create(c, 1, 0.1, 0.0, DataType.FLOAT);
    INDArray embedBefore = w.embed.arr.dup();
    LlamaModel m = new LlamaModel(w, null, DataType.FLOAT);
    new TrainMode(true, List.of("embed_tokens")).attach(m);
    SftTrainer.Options o = new SftTrainer.Options(8, 1, 16, 1e-3, 2, 60, 0.1, 0.0, 1.0, 5);
    DpoTrainer t = new DpoTrainer(m, o, "sigmoid", 0.5, 0.0);
    // the reference: the policy's starting weights, scored once before the first step
    List<DpoTrainer.Pair> train = withReference(rulePairs(64, 1), t);
    List<DpoTrainer.Pair> held = withReference(rulePairs(32, 2), t);
    MetricSums before = t.evaluate(held, 8);
    assertEquals(0.0, before.mean("rewards/margins"), 1e-4, "the untrained policy is its reference");
    double first = t.step(List.of(train.subList(0, 8))).metrics().mean("loss");
    for (int s = 1; s < 60; s++) {
      int off = (s * 8) % 64;
      t.step(List.of(train.subList(off, off + 4), train.subList(off + 4, off + 8)));
    }
    MetricSums after = t.evaluate(held, 8);
    System.out.printf("full DPO held-out: rewards/accuracies %.3f -> %.3f, margins %.3f -> %.3f%n",
        before.mean("rewards/accuracies"), after.mean("rewards/accuracies"), before.mean("rewards/margins"),
        after.mean("rewards/margins"));
    assertEquals(Math.log(2), first, 1e-4, "the first step starts at the reference: loss log 2");
    assertTrue(after.mean("rewards/accuracies") > 0.8, "held-out rewards/accuracies " + after.mean("rewards/accuracies"));
    assertTrue(after.mean("rewards/margins") > 0.5, "held-out margins " + after.mean("rewards/margins"));
    assertEquals(0.0, w.embed.arr.sub(embedBefore).amaxNumber().doubleValue(), "train.freeze: embed_tokens unchanged");
  }
}
