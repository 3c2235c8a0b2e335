package ai.lathe.model.eval;

import java.util.List;

/**
 * Win rate of a candidate against a baseline over judged items: the mean of the items' values
 * (win 1, loss 0, tie or inconsistent ½), its standard error sd/√n (sample sd, n − 1, as
 * AlpacaEval's), the counts, the mean answer lengths and the length-controlled win rate; {@link #ci95}
 * gives the win rate's Wilson interval.
 */
public record WinStats(int n, int wins, int losses, int ties, int inconsistent, double winRate, double stdErr,
    double lcWinRate, double avgLenCandidate, double avgLenBaseline) {

  /** One judged item: its outcome and the two answers' lengths (characters). */
  public record Item(Outcome outcome, double candidateLength, double baselineLength) {}

  public static WinStats of(List<Item> items) {
    int n = items.size();
    if (n == 0) {
      return new WinStats(0, 0, 0, 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
    }
    int w = 0;
    int l = 0;
    int t = 0;
    int inc = 0;
    double[] y = new double[n];
    double[] lc = new double[n];
    double[] lb = new double[n];
    double sum = 0;
    for (int i = 0; i < n; i++) {
      Item it = items.get(i);
      switch (it.outcome()) {
        case WIN -> w++;
        case LOSS -> l++;
        case TIE -> t++;
        case INCONSISTENT -> inc++;
      }
      y[i] = it.outcome().value;
      lc[i] = it.candidateLength();
      lb[i] = it.baselineLength();
      sum += y[i];
    }
    double mean = sum / n;
    double ss = 0;
    for (double v : y) {
      ss += (v - mean) * (v - mean);
    }
    double se = n > 1 ? Math.sqrt(ss / (n - 1)) / Math.sqrt(n) : Double.NaN;
    double lcRate = LengthControl.fit(y, lc, lb).winRate();
    return new WinStats(n, w, l, t, inc, mean, se, lcRate, avg(lc), avg(lb));
  }

  /**
   * The win rate's 95% Wilson score interval over the n items, each counted as the win rate counts
   * it (a tie or an inconsistent item as half a win), so p̂ = (wins + ½·ties) / n.
   */
  public WilsonInterval ci95() {
    return WilsonInterval.of(n == 0 ? 0 : winRate, n, WilsonInterval.Z95);
  }

  private static double avg(double[] a) {
    double s = 0;
    for (double v : a) {
      s += v;
    }
    return s / a.length;
  }
}
