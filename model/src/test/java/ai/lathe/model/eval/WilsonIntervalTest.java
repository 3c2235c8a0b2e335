package ai.lathe.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The win rate's Wilson interval against the closed form written another way, against Newcombe's
 * (1998) published table, at the edges (0/n, n/n, n = 1), and inside [0, 1] for every count.
 */
class WilsonIntervalTest {
  static final double Z = WilsonInterval.Z95;

  /** The closed form in its other spelling: (2np̂ + z² ∓ z·√(z² + 4np̂(1 − p̂))) / (2(n + z²)). */
  static double[] closedForm(double p, int n) {
    double root = Z * Math.sqrt(Z * Z + 4 * n * p * (1 - p));
    double den = 2 * (n + Z * Z);
    return new double[] {(2 * n * p + Z * Z - root) / den, (2 * n * p + Z * Z + root) / den};
  }

  @Test
  void matchesTheClosedFormAndStaysInTheUnitInterval() {
    for (int n : new int[] {1, 2, 3, 7, 24, 100, 1000}) {
      for (int halves = 0; halves <= 2 * n; halves++) { // p̂ in steps of ½/n: ties count half a win
        double p = halves / (2.0 * n);
        WilsonInterval w = WilsonInterval.of(p, n, Z);
        double[] want = closedForm(p, n);
        assertEquals(Math.max(0, want[0]), w.lower(), 1e-12, "lower at " + halves + "/2 of " + n);
        assertEquals(Math.min(1, want[1]), w.upper(), 1e-12, "upper at " + halves + "/2 of " + n);
        assertTrue(0 <= w.lower() && w.lower() <= p && p <= w.upper() && w.upper() <= 1, w + " at p̂ " + p);
      }
    }
  }

  /** Newcombe (1998), Table I, method 3 (score, no continuity correction), to his 4 decimals. */
  @Test
  void matchesNewcombesTable() {
    assertInterval(0.2553, 0.3662, WilsonInterval.of(81.0 / 263, 263, Z));
    assertInterval(0.0624, 0.1605, WilsonInterval.of(15.0 / 148, 148, Z));
    assertInterval(0.0, 0.1611, WilsonInterval.of(0.0, 20, Z));
    assertInterval(0.0061, 0.1718, WilsonInterval.of(1.0 / 29, 29, Z));
  }

  static void assertInterval(double lo, double hi, WilsonInterval w) {
    assertEquals(lo, w.lower(), 5e-5, w.toString());
    assertEquals(hi, w.upper(), 5e-5, w.toString());
  }

  @Test
  void noWinsStartsAtZeroAndAllWinsEndsAtOne() {
    for (int n : new int[] {1, 5, 24, 1000}) {
      WilsonInterval none = WilsonInterval.of(0.0, n, Z);
      assertEquals(0.0, none.lower(), "0/" + n);
      assertEquals(Z * Z / (n + Z * Z), none.upper(), 1e-12, "0/" + n + ": z²/(n + z²)");
      WilsonInterval all = WilsonInterval.of(1.0, n, Z);
      assertEquals(1.0, all.upper(), n + "/" + n);
      assertEquals(n / (n + Z * Z), all.lower(), 1e-12, n + "/" + n + ": n/(n + z²)");
    }
  }

  /** The pipeline's round 2 (21 wins, 1 loss, 2 ties of 24) had the normal interval 0.820-1.013. */
  @Test
  void winStatsCountsTiesAsHalfAWin() {
    List<WinStats.Item> items = new ArrayList<>();
    for (int i = 0; i < 24; i++) {
      Outcome o = i < 21 ? Outcome.WIN : i == 21 ? Outcome.LOSS : i == 22 ? Outcome.TIE : Outcome.INCONSISTENT;
      items.add(new WinStats.Item(o, 10, 10));
    }
    WinStats s = WinStats.of(items);
    assertEquals(22.0 / 24, s.winRate(), 1e-12);
    assertTrue(s.winRate() + 1.96 * s.stdErr() > 1, "the normal interval leaves [0, 1] here");
    double[] want = closedForm(22.0 / 24, 24);
    assertEquals(want[0], s.ci95().lower(), 1e-12);
    assertEquals(want[1], s.ci95().upper(), 1e-12);
    assertTrue(s.ci95().upper() < 1);
    WinStats empty = WinStats.of(List.of());
    assertTrue(Double.isNaN(empty.ci95().lower()) && Double.isNaN(empty.ci95().upper()), "no items, no interval");
  }

  @Test
  void badInputIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> WilsonInterval.of(1.5, 10, Z));
    assertThrows(IllegalArgumentException.class, () -> WilsonInterval.of(Double.NaN, 10, Z));
    assertThrows(IllegalArgumentException.class, () -> WilsonInterval.of(0.5, -1, Z));
    assertThrows(IllegalArgumentException.class, () -> new WilsonInterval(0.2, 1.01));
  }
}
