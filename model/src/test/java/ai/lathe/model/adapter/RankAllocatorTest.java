package ai.lathe.model.adapter;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** AdaLoRA's schedule, importance scores, masking and orthogonality penalty against independent computations. */
class RankAllocatorTest {
  static AdaLoraModule module(String path, int r, int in, int out, long seed) {
    Random rng = new Random(seed);
    INDArray a = Nd4j.zeros(DataType.DOUBLE, r, in);
    INDArray e = Nd4j.zeros(DataType.DOUBLE, r, 1);
    INDArray b = Nd4j.zeros(DataType.DOUBLE, out, r);
    for (INDArray x : new INDArray[] {a, e, b}) {
      for (long i = 0; i < x.length(); i++) {
        x.putScalar(i, rng.nextGaussian());
      }
    }
    return new AdaLoraModule(path, a, e, b, 8, r, 0);
  }

  /** Every step of four schedules equals PEFT's budget_schedule as tabulated by python (budget_table.py). */
  @Test
  void budgetEqualsPeftFormulaOverWholeSchedules() throws Exception {
    int lines = 0;
    try (BufferedReader in = new BufferedReader(new InputStreamReader(
        getClass().getResourceAsStream("/adalora/budget_table.txt"), StandardCharsets.UTF_8))) {
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        String[] f = line.trim().split(" ");
        int init = Integer.parseInt(f[0]);
        int target = Integer.parseInt(f[1]);
        AdaLoraConfig c = new AdaLoraConfig(12, 8, Integer.parseInt(f[2]), Integer.parseInt(f[3]),
            Integer.parseInt(f[5]), 0.85, 0.85, 0.5, Integer.parseInt(f[4]));
        AdaLoraConfig.Budget b = c.budget(Long.parseLong(f[6]), init, target);
        assertEquals(Integer.parseInt(f[7]), b.budget(), line);
        assertEquals(f[8].equals("1"), b.mask(), line);
        lines++;
      }
    }
    assertEquals(699, lines);
  }

  /** Through a whole run with random gradients: at every masking step, masked ranks = init − budget. */
  @Test
  void maskedRanksAreInitMinusBudgetAtEveryAllocation() {
    List<AdaLoraModule> mods = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      mods.add(module("model.layers." + i + ".self_attn.q_proj", 12, 6, 5, i));
    }
    AdaLoraConfig c = new AdaLoraConfig(12, 4, 3, 5, 3, 0.85, 0.85, 0.5, 37);
    RankAllocator ra = new RankAllocator(c, mods);
    assertEquals(48, ra.initBudget());
    assertEquals(16, ra.targetBudget());
    Random rng = new Random(3);
    int allocations = 0;
    for (long step = 0; step < 40; step++) {
      for (AdaLoraModule m : mods) {
        for (INDArray g : new INDArray[] {m.ga, m.ge, m.inner().gb}) {
          for (long i = 0; i < g.length(); i++) {
            g.putScalar(i, rng.nextGaussian());
          }
        }
        for (long i = 0; i < m.e.length(); i++) {
          m.e.putScalar(i, m.e.getDouble(i) + 0.01); // the optimizer moves E, masked ranks too
        }
      }
      ra.afterStep(step, true);
      AdaLoraConfig.Budget b = ra.budget(step);
      if (step <= 3) {
        assertEquals(48, ra.keptTotal(), "no masking during tinit");
      } else if (b.mask() && step <= 32) {
        assertEquals(ra.initBudget() - b.budget(), ra.initBudget() - ra.keptTotal(), "step " + step);
        allocations++;
      }
      if (step >= 32) {
        assertEquals(16, ra.keptTotal(), "final budget at step " + step);
        for (AdaLoraModule m : mods) {
          for (int i = 0; i < 12; i++) {
            if (!m.kept[i]) {
              assertEquals(0.0, m.e.getDouble(i), 0.0, "a masked rank's E is zero");
            }
          }
        }
      }
    }
    assertTrue(allocations >= 9, "allocations " + allocations);
  }

  /**
   * Scores by hand, β1 = β2 = 0.5, one update from zero EMAs: exp_avg_ipt = ipt/2,
   * exp_avg_unc = |ipt − ipt/2|/2 = ipt/4, so an entry scores ipt²/8. ipt = |w·g|:
   * A·gA = [[1,2,3],[1,0,2]], E·gE = [3,1], B·gB = [[2,1],[2,1]];
   * rank 0: (9 + (1+4+9)/3 + (4+4)/2)/8 = 53/24, rank 1: (1 + (1+0+4)/3 + (1+1)/2)/8 = 11/24.
   */
  @Test
  void importanceScoresOfAHandComputedCase() {
    INDArray a = Nd4j.create(new double[][] {{1, 2, 3}, {0.5, 0, 1}});
    INDArray e = Nd4j.create(new double[][] {{1}, {2}});
    INDArray b = Nd4j.create(new double[][] {{1, 1}, {2, -1}});
    AdaLoraModule m = new AdaLoraModule("model.layers.0.mlp.up_proj", a, e, b, 8, 2, 0);
    m.ga.assign(Nd4j.create(new double[][] {{1, 1, 1}, {2, 2, 2}}));
    m.ge.assign(Nd4j.create(new double[][] {{3}, {0.5}}));
    m.inner().gb.assign(Nd4j.create(new double[][] {{2, 1}, {1, 1}}));
    RankAllocator ra = new RankAllocator(new AdaLoraConfig(2, 1, 0, 0, 1, 0.5, 0.5, 0.5, 10), List.of(m));
    ra.updateImportance();
    assertArrayEquals(new float[] {0.5f, 1f, 1.5f, 0.5f, 0f, 1f}, m.expAvgIpt[0].toFloatVector());
    assertArrayEquals(new float[] {0.75f, 0.25f}, m.expAvgUnc[1].toFloatVector());
    double[] s = RankAllocator.scores(m);
    assertEquals(53.0 / 24, s[0], 1e-6);
    assertEquals(11.0 / 24, s[1], 1e-6);
    ra.maskToBudget(1);
    assertArrayEquals(new boolean[] {true, false}, m.kept());
    assertEquals(0.0, e.getDouble(1), 0.0);
    assertEquals(1.0, e.getDouble(0), 0.0);
  }

  /** R = mean over A and B of ‖PPᵀ − I‖_F: its gradient against central differences in double. */
  @Test
  void orthogonalityGradientMatchesFiniteDifferences() {
    List<AdaLoraModule> mods = List.of(module("model.layers.0.self_attn.q_proj", 3, 5, 4, 1),
        module("model.layers.0.mlp.down_proj", 4, 6, 3, 2));
    RankAllocator ra = new RankAllocator(new AdaLoraConfig(4, 2, 0, 0, 1, 0.85, 0.85, 0.7, 10), mods);
    double penalty = ra.orthPenalty();
    ra.addOrthGradients();
    // independent value: 0.7 · mean of the four norms, each from explicit loops
    double sum = 0;
    for (AdaLoraModule m : mods) {
      sum += naiveNorm(m.a, false) + naiveNorm(m.b, true);
    }
    assertEquals(0.7 * sum / 4, penalty, 1e-12);
    double h = 1e-6;
    int checked = 0;
    for (AdaLoraModule m : mods) {
      for (INDArray[] pg : new INDArray[][] {{m.a, m.ga}, {m.b, m.inner().gb}}) {
        for (long i = 0; i < pg[0].length(); i++) {
          double o = pg[0].getDouble(i);
          pg[0].putScalar(i, o + h);
          double lp = ra.orthPenalty();
          pg[0].putScalar(i, o - h);
          double lm = ra.orthPenalty();
          pg[0].putScalar(i, o);
          assertEquals((lp - lm) / (2 * h), pg[1].getDouble(i), 1e-7, "entry " + i);
          checked++;
        }
      }
    }
    assertEquals(15 + 12 + 24 + 12, checked);
    assertEquals(0.0, mods.get(0).ge.sumNumber().doubleValue(), 0.0, "E is not regularised");
  }

  static double naiveNorm(INDArray p, boolean columns) {
    int n = (int) (columns ? p.size(1) : p.size(0));
    int len = (int) (columns ? p.size(0) : p.size(1));
    double ss = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double dot = 0;
        for (int k = 0; k < len; k++) {
          dot += columns ? p.getDouble(k, i) * p.getDouble(k, j) : p.getDouble(i, k) * p.getDouble(j, k);
        }
        double d = dot - (i == j ? 1 : 0);
        ss += d * d;
      }
    }
    return Math.sqrt(ss);
  }

  @Test
  void scheduleWithoutBudgetingPhaseIsRefused() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> new AdaLoraConfig(12, 8, 10, 20, 1, 0.85, 0.85, 0.5, 30));
    assertTrue(e.getMessage().contains("no budgeting phase"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new AdaLoraConfig(4, 8, 0, 0, 1, 0.85, 0.85, 0.5, 30));
  }

  /** lora.type: adalora reads PEFT's fields (delta_t for deltaT) with PEFT's defaults; bad combinations fail. */
  @Test
  void configKeys() throws Exception {
    LoraConfig lc = LoraConfig.fromConfig(ai.lathe.model.Config.load(null, List.of("lora.type=adalora",
        "lora.init_r=6", "lora.target_r=4", "lora.tinit=2", "lora.delta_t=3", "lora.beta2=0.9")));
    assertEquals(new AdaLoraConfig(6, 4, 2, 0, 3, 0.85, 0.9, 0.5, 0), lc.adalora());
    assertEquals(6, lc.rankFor("model.layers.0.self_attn.q_proj"));
    assertEquals(null, LoraConfig.fromConfig(ai.lathe.model.Config.load(null, List.of())).adalora());
    var e = assertThrows(IllegalArgumentException.class, () -> LoraConfig.fromConfig(ai.lathe.model.Config.load(null,
        List.of("lora.type=adalora", "lora.use_dora=true"))));
    assertTrue(e.getMessage().contains("use_dora"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> LoraConfig.fromConfig(ai.lathe.model.Config.load(null,
        List.of("lora.type=ada"))));
    assertTrue(e.getMessage().contains("lora.type"), e.getMessage());
  }
}
