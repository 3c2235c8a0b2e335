package ai.lathe.jobs;

import ai.lathe.model.LlamaModel;
import ai.lathe.model.eval.Judge;
import ai.lathe.model.eval.JudgePrompt;
import ai.lathe.model.gen.Generation;
import ai.lathe.model.gen.Generator;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.HfTokenizer;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The executor side of an eval: for each item the candidate and the baseline answer (the
 * generator, one item at a time with a seed of its own, so results do not depend on how items
 * are partitioned), and the judge compares the answers in both orders. Models come from the
 * executor's cache (loaded once per JVM); engines and tokenizers are per task thread.
 */
final class EvalWorker {
  private EvalWorker() {}

  /** One judged item. finish: stop | length | reference; executor: the Spark executor id that judged it. */
  record Judged(String id, String lang, String prompt, int[] promptIds, String candidate, int[] candidateIds,
      String candidateFinish, String baseline, int[] baselineIds, String baselineFinish, double pACandidateFirst,
      double pABaselineFirst, String executor) implements Serializable {}

  /** What the tasks need besides the settings: the judge prompt text and the judge's chat template. */
  record Plan(EvalSettings s, String judgePromptText, String judgeTemplate) implements Serializable {}

  /** One generator per engine and thread (an eval needs two: candidate, baseline); emptied between stages. */
  private static final ThreadLocal<Map<LlamaModel, Generator>> GENERATORS = ThreadCache.perThread(2, g -> { });

  private static final ThreadLocal<Map<String, HfTokenizer>> TOKENIZERS = ThreadLocal.withInitial(HashMap::new);

  static HfTokenizer tokenizer(String model) {
    return TOKENIZERS.get().computeIfAbsent(model, m -> {
      try {
        return HfTokenizer.open(ExecutorModels.localCopy(m).resolve("tokenizer.json"));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }

  static Iterator<Judged> run(Plan plan, Iterator<EvalItems.Item> items) {
    EvalSettings s = plan.s();
    HfTokenizer tok = tokenizer(s.model());
    LlamaModel cand = RefLogpsJob.engine(s.model(), s.quant(), s.candidateAdapter());
    int[] stop = stopIds(tok, cand);
    HfTokenizer jtok = tokenizer(s.judgeModel());
    JudgePrompt jp = s.judgePrompt(plan.judgePromptText());
    List<Judged> out = new ArrayList<>();
    while (items.hasNext()) {
      EvalItems.Item it = items.next();
      long seed = itemSeed(s.seed(), it.id());
      Generation c = answer(s.model(), s.quant(), s.candidateAdapter(), it.promptIds(), s, stop, seed);
      Generation b = switch (s.baselineKind()) {
        case "reference" -> new Generation(it.referenceIds(), Generation.STOP);
        case "base" -> answer(s.model(), s.quant(), null, it.promptIds(), s, stop, seed);
        default -> answer(s.model(), s.quant(), s.baselineAdapter(), it.promptIds(), s, stop, seed);
      };
      String ct = EvalItems.text(tok, c.tokens());
      String bt = EvalItems.text(tok, b.tokens());
      LlamaModel jm = RefLogpsJob.engine(s.judgeModel(), "none", s.judgeAdapter());
      jm.setAdaptersEnabled(s.judgeAdapter() != null);
      Judge judge = new Judge(jm, jtok, ChatTemplate.of(plan.judgeTemplate()), jp);
      Judge.Verdict v;
      try {
        v = judge.judge(it.prompt(), ct, bt);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(it.where() + ": " + e.getMessage(), e);
      }
      out.add(new Judged(it.id(), it.lang(), it.prompt(), it.promptIds(), ct, c.tokens(), c.finishReason(), bt,
          b.tokens(), s.baselineKind().equals("reference") ? "reference" : b.finishReason(), v.pACandidateFirst(),
          v.pABaselineFirst(), Rounds.executorId()));
    }
    return out.iterator();
  }

  static Generation answer(String model, String quant, String adapter, int[] prompt, EvalSettings s, int[] stop,
      long seed) {
    LlamaModel m = RefLogpsJob.engine(model, quant, adapter);
    m.setAdaptersEnabled(adapter != null);
    // one generator per engine and thread: it keeps its decoder buffers between items; an eval
    // needs two (candidate, baseline), so a third engine means a new eval: the oldest goes
    return GENERATORS.get().computeIfAbsent(m, Generator::new).generate(List.of(prompt), s.sampling(stop), seed).get(0);
  }

  /** The tokenizer's and the model config's end-of-sequence ids. */
  static int[] stopIds(HfTokenizer tok, LlamaModel m) {
    int a = tok.eosId();
    int b = m.config().eosTokenId();
    return a == b || a < 0 ? new int[] {b} : new int[] {a, b};
  }

  /** An item's sampling seed: the job's seed and the item's id (String.hashCode is fixed by the language). */
  static long itemSeed(long seed, String id) {
    return seed * 0x9E3779B97F4A7C15L + id.hashCode();
  }
}
