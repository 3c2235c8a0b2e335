package ai.lathe.model.eval;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.HfTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A pairwise judge read from log-probabilities, not sampled: the judge conversation (the prompt
 * as the user turn, the reply opened with the verdict prefix) is tokenised once per label, and
 * the verdict is p(A) = exp(lA) / (exp(lA) + exp(lB)), where lX = log p(label X's token | the
 * tokens before it) is the sequence log-prob that {@code score} computes for that one token.
 */
public final class Judge {
  /** The tokens before the label and the two label tokens. */
  public record Query(int[] prefix, int labelA, int labelB) {}

  /** Both orders of one comparison: pA with the candidate as A, and pA with the baseline as A. */
  public record Verdict(double pACandidateFirst, double pABaselineFirst) {
    /** The candidate's probability of being preferred, averaged over both orders. */
    public double candidatePreference() {
      return (pACandidateFirst + (1 - pABaselineFirst)) / 2;
    }
  }

  private final LlamaModel model;
  private final HfTokenizer tok;
  private final ChatTemplate template;
  private final JudgePrompt prompt;

  public Judge(LlamaModel model, HfTokenizer tok, ChatTemplate template, JudgePrompt prompt) {
    this.model = model;
    this.tok = tok;
    this.template = template;
    this.prompt = prompt;
  }

  /**
   * The query of one ordered pair. The two labelled conversations must differ in exactly one token
   * (the label), else the judge's tokenizer cannot encode the labels as single tokens in this
   * position and no verdict can be read from one next-token distribution.
   */
  public Query query(String question, String answerA, String answerB) {
    return query(tok, template, prompt, question, answerA, answerB, model.config().maxPositionEmbeddings());
  }

  /**
   * Checks, before any model is loaded, that the judge's tokenizer encodes the labels as single
   * tokens after the verdict prefix (on a short sample comparison; every item is checked again).
   */
  public static void checkLabels(HfTokenizer tok, ChatTemplate template, JudgePrompt prompt) {
    query(tok, template, prompt, "Question?", "First answer.", "Second answer.", Integer.MAX_VALUE);
  }

  static Query query(HfTokenizer tok, ChatTemplate template, JudgePrompt prompt, String question, String answerA,
      String answerB, int maxPos) {
    String user = prompt.render(question, answerA, answerB);
    int[] a = template.tokenize(tok, user, prompt.verdictPrefix() + prompt.labelA()).ids();
    int[] b = template.tokenize(tok, user, prompt.verdictPrefix() + prompt.labelB()).ids();
    int k = 0;
    while (k < Math.min(a.length, b.length) && a[k] == b[k]) {
      k++;
    }
    boolean single = a.length == b.length && k < a.length
        && Arrays.equals(a, k + 1, a.length, b, k + 1, b.length);
    if (!single) {
      throw new IllegalArgumentException("judge tokenizer " + tok.file() + " cannot encode the answer labels '"
          + prompt.labelA() + "' and '" + prompt.labelB() + "' as single tokens after '" + prompt.verdictPrefix()
          + "' (the two verdicts differ in more than one token); choose other judge.labels or judge.verdict_prefix");
    }
    if (k + 1 > maxPos) {
      throw new IllegalArgumentException("judge prompt has " + (k + 1) + " tokens, more than the judge's"
          + " max_position_embeddings " + maxPos);
    }
    return new Query(Arrays.copyOf(a, k), a[k], b[k]);
  }

  /** p(A) of each query, normalised over the two labels: one forward pass over 2 sequences per query. */
  public double[] probA(List<Query> qs) {
    List<int[]> ids = new ArrayList<>();
    int[] starts = new int[2 * qs.size()];
    int seq = 1;
    for (int i = 0; i < qs.size(); i++) {
      Query q = qs.get(i);
      for (int label : new int[] {q.labelA(), q.labelB()}) {
        int[] s = Arrays.copyOf(q.prefix(), q.prefix().length + 1);
        s[s.length - 1] = label;
        starts[ids.size()] = q.prefix().length;
        ids.add(s);
        seq = Math.max(seq, s.length);
      }
    }
    double[] lp = model.sequenceLogProbs(Batch.of(ids, starts, seq, 0));
    double[] p = new double[qs.size()];
    for (int i = 0; i < p.length; i++) {
      p[i] = probFirst(lp[2 * i], lp[2 * i + 1]);
    }
    return p;
  }

  /** exp(la) / (exp(la) + exp(lb)) = sigmoid(la − lb), computed without overflow. */
  public static double probFirst(double la, double lb) {
    double d = la - lb;
    return d >= 0 ? 1 / (1 + Math.exp(-d)) : Math.exp(d) / (1 + Math.exp(d));
  }

  /** Both orders of one comparison in one forward pass. */
  public Verdict judge(String question, String candidate, String baseline) {
    double[] p = probA(List.of(query(question, candidate, baseline), query(question, baseline, candidate)));
    return new Verdict(p[0], p[1]);
  }
}
