package ai.lathe.model.train;

import ai.lathe.model.LlamaModel;
import java.util.Arrays;
import java.util.List;

/**
 * KTO (see {@link PreferenceLoss#kto}) on labelled completions against precomputed reference
 * log-probs. The KL estimate uses mismatched pairs made inside each micro-batch as TRL does
 * (prompt i with the completion of example i−1), scored without gradient by the policy and by
 * the reference engine (the frozen base, or base + reference adapter); with no reference engine,
 * or a micro-batch of one, the KL term is 0. Metrics: loss, kl, rewards/chosen (desirable),
 * rewards/rejected (undesirable), rewards/margins, logps/chosen, logps/rejected.
 */
public final class KtoTrainer extends PreferenceTrainer<KtoTrainer.Example> {
  /** A labelled completion: the full sequence, where its completion starts, label, reference log-prob. */
  public record Example(int[] ids, int start, boolean desirable, double ref) implements java.io.Serializable {
    /** The prompt's tokens: the key that groups a prompt's completions. */
    public List<Integer> prompt() {
      return Arrays.stream(ids, 0, start).boxed().toList();
    }

    boolean samePrompt(Example o) {
      return Arrays.equals(ids, 0, start, o.ids, 0, o.start);
    }

    /** A total order independent of the data's order: label, then tokens. */
    public static final java.util.Comparator<Example> ORDER = (a, b) -> {
      int c = Boolean.compare(a.desirable, b.desirable);
      return c != 0 ? c : Arrays.compare(a.ids, b.ids);
    };
  }

  private final LlamaModel reference;
  private final double beta;
  private final double desirableWeight;
  private final double undesirableWeight;
  /** Tests: holds the KL estimate fixed (it is not differentiated), NaN = estimate it. */
  double fixedKl = Double.NaN;

  public KtoTrainer(LlamaModel model, LlamaModel reference, SftTrainer.Options o, double beta, double desirableWeight,
      double undesirableWeight) {
    super(model, o);
    if (beta <= 0 || desirableWeight <= 0 || undesirableWeight <= 0) {
      throw new IllegalArgumentException("KTO needs beta, desirable_weight and undesirable_weight > 0");
    }
    this.reference = reference;
    this.beta = beta;
    this.desirableWeight = desirableWeight;
    this.undesirableWeight = undesirableWeight;
  }

  /**
   * Prompt of example i with the completion of example i−1 (cyclically), as TRL pairs them; when
   * i−1 answers the same prompt (a prompt's completions sit together in a micro-batch), the
   * nearest earlier example with another prompt instead, so the pair really is mismatched.
   */
  static List<int[]> mismatched(List<Example> ex, int[] starts) {
    List<int[]> out = list();
    int n = ex.size();
    for (int i = 0; i < n; i++) {
      Example p = ex.get(i);
      int j = (i + n - 1) % n;
      for (int k = 1; k < n && ex.get((i + n - k) % n).samePrompt(p); k++) {
        j = (i + n - k - 1) % n;
      }
      Example c = ex.get(j);
      int[] s = Arrays.copyOf(p.ids(), p.start() + c.ids().length - c.start());
      System.arraycopy(c.ids(), c.start(), s, p.start(), c.ids().length - c.start());
      out.add(s);
      starts[i] = p.start();
    }
    return out;
  }

  @Override
  protected long micro(List<Example> ex, boolean grad, double scale, long seed, MetricSums m) {
    int n = ex.size();
    long tokens = 0;
    double[] klPolicy = new double[0];
    double[] klRef = new double[0];
    if (!Double.isNaN(fixedKl)) {
      klPolicy = new double[] {fixedKl};
      klRef = new double[] {0};
    } else if (reference != null && n > 1) {
      int[] ks = new int[n];
      List<int[]> kl = mismatched(ex, ks);
      List<int[]> fit = list();
      for (int[] s : kl) {
        fit.add(s.length > o.seqLen() ? Arrays.copyOf(s, o.seqLen()) : s);
      }
      klPolicy = model.sequenceLogProbs(batch(fit, ks));
      klRef = reference.sequenceLogProbs(batch(fit, ks));
      tokens += 2 * tokens(fit);
    }
    List<int[]> ids = list();
    int[] starts = new int[n];
    double[] ref = new double[n];
    boolean[] des = new boolean[n];
    for (int i = 0; i < n; i++) {
      ids.add(ex.get(i).ids());
      starts[i] = ex.get(i).start();
      ref[i] = ex.get(i).ref();
      des[i] = ex.get(i).desirable();
    }
    double[] lp = policy(batch(ids, starts), grad, seed)[0];
    PreferenceLoss.Result r = PreferenceLoss.kto(beta, desirableWeight, undesirableWeight, lp, ref, des, klPolicy, klRef);
    if (grad) {
      backward(r.dChosen(), scale);
    }
    double kl = 0;
    for (int i = 0; i < klPolicy.length; i++) {
      kl += (klPolicy[i] - klRef[i]) / klPolicy.length;
    }
    int nd = 0;
    double lpc = 0;
    double lpr = 0;
    for (int i = 0; i < n; i++) {
      nd += des[i] ? 1 : 0;
      lpc += des[i] ? lp[i] : 0;
      lpr += des[i] ? 0 : lp[i];
    }
    m.add("loss", r.loss(), n).add("kl", Math.max(0, kl), klPolicy.length > 0 ? 1 : 0)
        .add("rewards/chosen", r.rewardsChosen(), nd).add("rewards/rejected", r.rewardsRejected(), n - nd)
        .add("logps/chosen", nd == 0 ? Double.NaN : lpc / nd, nd)
        .add("logps/rejected", nd == n ? Double.NaN : lpr / (n - nd), n - nd);
    return tokens + tokens(ids);
  }
}
