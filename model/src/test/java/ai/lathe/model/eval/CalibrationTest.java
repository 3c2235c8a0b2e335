package ai.lathe.model.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class CalibrationTest {
  static final Calibration BALANCED = Calibration.of("balanced", 0.0);

  /** sigmoid, written out independently of Judge.probFirst. */
  static double sigmoid(double x) {
    return 1 / (1 + Math.exp(-x));
  }

  /**
   * By hand: p1 = 0.8, p2 = 0.3 → logit p1 = ln 4, logit p2 = ln(3/7), so
   * s = (ln 4 − ln(3/7)) / 2 = ln(28/3) / 2 = 1.11679..., b = (ln 4 + ln(3/7)) / 2 = ln(12/7) / 2.
   */
  @Test
  void scoreAndBiasByHand() {
    assertEquals(Math.log(28.0 / 3) / 2, Calibration.score(0.8, 0.3), 1e-15);
    assertEquals(1.1167962, Calibration.score(0.8, 0.3), 1e-7);
    assertEquals(Math.log(12.0 / 7) / 2, Calibration.positionBias(0.8, 0.3), 1e-15);
    // the uncalibrated rule: 0.8 > ½ (candidate as A preferred) and 0.3 < ½ (candidate as B preferred)
    assertEquals(Outcome.WIN, Calibration.NONE.decide(0.8, 0.3));
    assertEquals(Outcome.WIN, BALANCED.decide(0.8, 0.3));
    assertEquals(Outcome.TIE, Calibration.of("balanced", 1.2).decide(0.8, 0.3)); // s = 1.117 inside the margin
    assertEquals(Outcome.WIN, Calibration.of("balanced", 1.1).decide(0.8, 0.3));
    assertEquals(Outcome.LOSS, Calibration.of("balanced", 1.1).decide(0.3, 0.8));
    // preference: none is the mean over both orders; balanced is sigmoid(s) = √(28/3) / (1 + √(28/3))
    assertEquals((0.8 + 0.7) / 2, Calibration.NONE.preference(0.8, 0.3), 1e-15);
    assertEquals(new Judge.Verdict(0.8, 0.3).candidatePreference(), Calibration.NONE.preference(0.8, 0.3), 0);
    assertEquals(Math.sqrt(28.0 / 3) / (1 + Math.sqrt(28.0 / 3)), BALANCED.preference(0.8, 0.3), 1e-15);
    // logit is accurate where p is tiny (log1p), and the inverse of sigmoid
    assertEquals(-40, Calibration.logit(sigmoid(-40)), 1e-9);
    assertEquals(2.5, Calibration.logit(sigmoid(2.5)), 1e-12);
  }

  /**
   * A judge with a pure position bias: log-odds for A are c + b with the candidate as A and −c + b
   * with it as B, with b = 3 larger than every content preference c. The uncalibrated rule calls
   * every item inconsistent; balanced recovers the sign of c (s = c), and c = 0 is an exact tie.
   */
  @Test
  void positionBiasIsCancelled() {
    double b = 3;
    double[] c = {1.5, -0.7, 0.3, -2.0, 0.0, 0.05};
    Outcome[] content = {Outcome.WIN, Outcome.LOSS, Outcome.WIN, Outcome.LOSS, Outcome.TIE, Outcome.WIN};
    List<double[]> verdicts = new ArrayList<>();
    for (int i = 0; i < c.length; i++) {
      double p1 = sigmoid(c[i] + b);
      double p2 = sigmoid(-c[i] + b);
      verdicts.add(new double[] {p1, p2});
      assertEquals(Outcome.INCONSISTENT, Calibration.NONE.decide(p1, p2), "item " + i);
      assertEquals(content[i], BALANCED.decide(p1, p2), "item " + i);
      assertEquals(c[i], Calibration.score(p1, p2), 1e-12);
      assertEquals(b, Calibration.positionBias(p1, p2), 1e-12);
    }
    // with a margin of 0.1 log-odds the weak preference (0.05) becomes a tie, the rest stay
    assertEquals(Outcome.TIE, Calibration.of("balanced", 0.1).decide(sigmoid(0.05 + b), sigmoid(-0.05 + b)));
    assertEquals(Outcome.LOSS, Calibration.of("balanced", 0.1).decide(sigmoid(-0.7 + b), sigmoid(0.7 + b)));
    // the bias report: every item inconsistent under the raw rule, mean bias b, s quantiles = c's
    BiasReport r = BiasReport.of(verdicts);
    assertEquals(6, r.n());
    assertEquals(6, r.rawInconsistent());
    assertEquals(b, r.meanPositionBias(), 1e-12);
    assertArrayEquals(new double[] {-2.0, -0.7, 0.05, 0.3, 1.5}, r.scoreQuantiles(), 1e-12);
    // the win rate under each rule: all ½ raw, the content's under balanced
    List<WinStats.Item> raw = new ArrayList<>();
    List<WinStats.Item> cal = new ArrayList<>();
    for (double[] v : verdicts) {
      raw.add(new WinStats.Item(Calibration.NONE.decide(v[0], v[1]), 10, 10));
      cal.add(new WinStats.Item(BALANCED.decide(v[0], v[1]), 10, 10));
    }
    assertEquals(0.5, WinStats.of(raw).winRate(), 0);
    assertEquals(6, WinStats.of(raw).inconsistent());
    assertEquals((1 + 0 + 1 + 0 + 0.5 + 1) / 6, WinStats.of(cal).winRate(), 1e-15);
    assertEquals(0, WinStats.of(cal).inconsistent());
  }

  /** Probabilities saturated to 0 or 1 in double: an infinite s still decides, an undefined one is a tie. */
  @Test
  void saturatedProbabilities() {
    assertEquals(Outcome.WIN, BALANCED.decide(1.0, 0.3));
    assertEquals(Outcome.LOSS, BALANCED.decide(0.2, 1.0));
    assertEquals(Outcome.TIE, BALANCED.decide(1.0, 1.0)); // both orders pinned to A: no content signal
    assertEquals(0.5, BALANCED.preference(1.0, 1.0), 0);
    assertTrue(Double.isNaN(BiasReport.of(List.of(new double[] {1.0, 1.0})).scoreQuantiles()[2]));
    assertThrows(IllegalArgumentException.class, () -> BALANCED.decide(Double.NaN, 0.3));
  }

  @Test
  void badSettingsFailNamingTheKey() {
    var e = assertThrows(IllegalArgumentException.class, () -> Calibration.of("balance", 0));
    assertTrue(e.getMessage().contains("judge.calibration must be none or balanced, got 'balance'"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Calibration.of("balanced", -0.1));
    assertTrue(e.getMessage().contains("judge.margin"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Calibration.of("balanced", Double.NaN));
    assertEquals(Calibration.Mode.NONE, Calibration.of("None", 0).mode());
  }
}
