package ai.lathe.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The preference losses and their gradients against tests/python/pref_loss_ref.py (TRL's
 * formulas in torch, gradients by autograd), and against central finite differences.
 */
class PreferenceLossTest {
  static double[] d(JsonNode a) {
    double[] x = new double[a.size()];
    for (int i = 0; i < x.length; i++) {
      x[i] = a.get(i).asDouble();
    }
    return x;
  }

  @Test
  void dpoFamilyMatchesTheReference() throws Exception {
    JsonNode g = new ObjectMapper().readTree(Path.of("src/test/resources/golden/pref-loss.json").toFile());
    double[] pc = d(g.get("pc"));
    double[] pr = d(g.get("pr"));
    double[] rc = d(g.get("rc"));
    double[] rr = d(g.get("rr"));
    var it = g.get("dpo").fields();
    int cases = 0;
    while (it.hasNext()) {
      var e = it.next();
      String[] k = e.getKey().split("-");
      PreferenceLoss.Result r = PreferenceLoss.dpo(k[0], Double.parseDouble(k[1]), Double.parseDouble(k[2]), pc, pr, rc, rr);
      assertEquals(e.getValue().get("loss").asDouble(), r.loss(), 1e-9, e.getKey());
      double[] dc = d(e.getValue().get("dc"));
      double[] dr = d(e.getValue().get("dr"));
      for (int i = 0; i < pc.length; i++) {
        assertEquals(dc[i], r.dChosen()[i], 1e-9, e.getKey() + " dchosen " + i);
        assertEquals(dr[i], r.dRejected()[i], 1e-9, e.getKey() + " drejected " + i);
      }
      // and by finite differences
      double h = 1e-6;
      for (int i = 0; i < pc.length; i++) {
        double[] p = pc.clone();
        p[i] += h;
        double lp = PreferenceLoss.dpo(k[0], Double.parseDouble(k[1]), Double.parseDouble(k[2]), p, pr, rc, rr).loss();
        p[i] -= 2 * h;
        double lm = PreferenceLoss.dpo(k[0], Double.parseDouble(k[1]), Double.parseDouble(k[2]), p, pr, rc, rr).loss();
        assertEquals((lp - lm) / (2 * h), r.dChosen()[i], 1e-6, e.getKey() + " fd " + i);
      }
      cases++;
    }
    assertEquals(5, cases);
  }

  @Test
  void ktoMatchesTheReference() throws Exception {
    JsonNode g = new ObjectMapper().readTree(Path.of("src/test/resources/golden/pref-loss.json").toFile()).get("kto");
    boolean[] des = new boolean[g.get("des").size()];
    for (int i = 0; i < des.length; i++) {
      des[i] = g.get("des").get(i).asBoolean();
    }
    PreferenceLoss.Result r = PreferenceLoss.kto(0.1, 1.0, 1.33, d(g.get("pol")), d(g.get("ref")), des, d(g.get("klp")),
        d(g.get("klr")));
    assertEquals(g.get("loss").asDouble(), r.loss(), 1e-9);
    double[] exp = d(g.get("d"));
    for (int i = 0; i < exp.length; i++) {
      assertEquals(exp[i], r.dChosen()[i], 1e-9, "d " + i);
    }
  }
}
