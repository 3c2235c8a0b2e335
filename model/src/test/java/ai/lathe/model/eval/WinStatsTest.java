package ai.lathe.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class WinStatsTest {
  @Test
  void outcomesFromBothOrders() {
    assertEquals(Outcome.WIN, Outcome.of(0.9, 0.2)); // A=cand preferred, then B=cand preferred
    assertEquals(Outcome.LOSS, Outcome.of(0.3, 0.7));
    assertEquals(Outcome.INCONSISTENT, Outcome.of(0.8, 0.8)); // position bias: always A
    assertEquals(Outcome.INCONSISTENT, Outcome.of(0.2, 0.1));
    assertEquals(Outcome.TIE, Outcome.of(0.5, 0.1));
  }

  /**
   * Win rate, standard error and the length-controlled win rate against tests/python/lc_winrate_ref.py
   * (numpy + scipy BFGS on the same penalised soft-label objective): win rate 0.7, SE 0.13333,
   * θ = 0.93891792, φ = 2.77766037, LC = sigmoid(θ) = 0.71888103.
   */
  @Test
  void matchesNumpyReference() {
    double[] y = {1, 1, 0.5, 0, 1, 0.5, 1, 0, 1, 1};
    double[] lc = {120, 80, 60, 30, 200, 90, 150, 20, 110, 95};
    double[] lb = {100, 100, 70, 60, 100, 60, 100, 50, 100, 90};
    List<WinStats.Item> items = new ArrayList<>();
    for (int i = 0; i < y.length; i++) {
      Outcome o = y[i] == 1 ? Outcome.WIN : y[i] == 0 ? Outcome.LOSS : i == 2 ? Outcome.TIE : Outcome.INCONSISTENT;
      items.add(new WinStats.Item(o, lc[i], lb[i]));
    }
    WinStats s = WinStats.of(items);
    assertEquals(10, s.n());
    assertEquals(6, s.wins());
    assertEquals(2, s.losses());
    assertEquals(1, s.ties());
    assertEquals(1, s.inconsistent());
    assertEquals(0.7, s.winRate(), 1e-12);
    assertEquals(0.13333333333333333, s.stdErr(), 1e-12);
    assertEquals(95.5, s.avgLenCandidate(), 1e-12);
    assertEquals(83.0, s.avgLenBaseline(), 1e-12);
    double[] x = LengthControl.feature(lc, lb);
    assertEquals(0.45857402, x[0], 1e-8);
    assertEquals(0.98600306, x[4], 1e-8);
    LengthControl.Fit f = LengthControl.fit(y, lc, lb);
    assertEquals(0.93891792, f.theta(), 1e-6);
    assertEquals(2.77766037, f.phi(), 1e-6);
    assertEquals(0.7188810297510004, s.lcWinRate(), 1e-7);
  }

  /** Every item won at equal lengths: the penalty keeps θ finite (scipy: θ = 4.48047181). */
  @Test
  void separableDataStaysFinite() {
    List<WinStats.Item> items = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      items.add(new WinStats.Item(Outcome.WIN, 10, 10));
    }
    WinStats s = WinStats.of(items);
    assertEquals(1.0, s.winRate());
    assertEquals(0.0, s.stdErr());
    assertEquals(0.9887988205515829, s.lcWinRate(), 1e-7);
  }

  /**
   * The candidate wins exactly when it is longer: the length term takes the effect and the rate at
   * equal length falls below ½ (scipy: θ = −0.1659875, LC 0.45859814) though the raw rate is 0.75.
   */
  @Test
  void lengthBiasIsRemoved() {
    // the candidate wins exactly when it is longer: LC must fall well below the raw rate of 0.75
    double[] lc = {200, 210, 190, 50};
    double[] lb = {100, 100, 100, 100};
    List<WinStats.Item> items = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      items.add(new WinStats.Item(lc[i] > lb[i] ? Outcome.WIN : Outcome.LOSS, lc[i], lb[i]));
    }
    WinStats s = WinStats.of(items);
    assertEquals(0.75, s.winRate(), 1e-12);
    assertEquals(0.45859813831397583, s.lcWinRate(), 1e-7);
  }
}
