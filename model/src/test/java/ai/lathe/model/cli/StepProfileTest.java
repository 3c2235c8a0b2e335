package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The bench's per-stage profile: sections grouped into stages, the untimed rest as "other". */
class StepProfileTest {
  @Test
  void groupsSectionsIntoStagesAndTheRestIsOther() {
    Map<String, Double> sec = new LinkedHashMap<>();
    sec.put("attention", 2.0);
    sec.put("attention.back", 4.0);
    sec.put("projections", 6.0);
    sec.put("projections.back", 6.0);
    sec.put("mlp", 10.0);
    sec.put("mlp.back", 10.0);
    sec.put("head", 3.0);
    sec.put("softmax", 1.0);
    sec.put("softmax.back", 1.0);
    sec.put("head.back", 3.0);
    sec.put("norms_rope", 1.0);
    sec.put("norms_rope.back", 1.0);
    sec.put("optimizer", 0.4);
    sec.put("something_new", 0.6);
    // per step: 24.2 s in named stages, 0.3 s in an unknown section, 0.5 s untimed (of a 25 s step)
    StepProfile p = StepProfile.of(sec, 2, 25.0, 40.0);
    assertEquals(3.0, p.stages().get("attention"), 1e-12);
    assertEquals(6.0, p.stages().get("projections"), 1e-12);
    assertEquals(10.0, p.stages().get("mlp"), 1e-12);
    assertEquals(4.0, p.stages().get("head_loss"), 1e-12);
    assertEquals(1.0, p.stages().get("norms_rope"), 1e-12);
    assertEquals(0.2, p.stages().get("optimizer"), 1e-12);
    assertEquals(0.3 + 0.5, p.stages().get("other"), 1e-12);
    double sum = p.stages().values().stream().mapToDouble(Double::doubleValue).sum();
    assertEquals(25.0, sum, 1e-9, "stages add up to the step");

    ObjectNode o = new ObjectMapper().createObjectNode();
    p.putInto(o);
    JsonNode st = o.get("stages");
    assertEquals(StepProfile.STAGES.size(), st.size());
    assertEquals(0.4, st.get("mlp").get("share").asDouble(), 1e-4);
    assertEquals(40.0, o.get("cpu_seconds").asDouble());

    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    p.print(new PrintStream(buf, true, StandardCharsets.UTF_8));
    String text = buf.toString(StandardCharsets.UTF_8);
    assertTrue(text.contains("attention") && text.contains("12.0%"), text);
  }

  /** CPU seconds per section group like wall seconds; the rest of the step's CPU is "other". */
  @Test
  void cpuSecondsPerStageGroupLikeWallSeconds() {
    Map<String, Double> wall = Map.of("mlp", 4.0, "mlp.back", 4.0, "head", 2.0);
    Map<String, Double> cpu = Map.of("mlp", 7.0, "mlp.back", 7.0, "head", 3.0);
    StepProfile p = StepProfile.of(wall, cpu, 2, 6.0, 10.0);
    assertEquals(7.0, p.cpuStages().get("mlp"), 1e-12);
    assertEquals(1.5, p.cpuStages().get("head_loss"), 1e-12);
    assertEquals(10.0 - 8.5, p.cpuStages().get("other"), 1e-12);
    assertEquals(4.0, p.stages().get("mlp"), 1e-12);
    ObjectNode o = new ObjectMapper().createObjectNode();
    p.putInto(o);
    assertEquals(7.0, o.get("stages").get("mlp").get("cpu_seconds").asDouble(), 1e-12);
    ObjectNode none = new ObjectMapper().createObjectNode();
    StepProfile.of(wall, 2, 6.0, 10.0).putInto(none);
    assertTrue(none.get("stages").get("mlp").get("cpu_seconds") == null, "no CPU column when not measured");
  }

  /** Timers count the process's CPU time inside a section: a busy loop's, not a sleep's. */
  @Test
  void timersMeasureCpuTimeOfASection() throws Exception {
    ai.lathe.model.nn.Timers.enable(true);
    try {
      ai.lathe.model.nn.Timers.secondsAndReset();
      long t0 = ai.lathe.model.nn.Timers.start();
      long end = System.nanoTime() + 200_000_000L;
      double x = 0;
      while (System.nanoTime() < end) {
        x += Math.sqrt(x + 1);
      }
      ai.lathe.model.nn.Timers.stop("busy", t0);
      long t1 = ai.lathe.model.nn.Timers.start();
      Thread.sleep(200);
      ai.lathe.model.nn.Timers.stop("sleep", t1);
      Map<String, Double> cpu = ai.lathe.model.nn.Timers.cpuSeconds();
      Map<String, Double> wall = ai.lathe.model.nn.Timers.secondsAndReset();
      assertTrue(x > 0);
      assertTrue(cpu.get("busy") > 0.02, "busy section's CPU " + cpu);
      // a sleeping section's CPU is the JVM's background threads only (on a loaded machine the
      // busy loop may get less than its wall time, so the bound is the sleep's wall time)
      assertTrue(cpu.get("sleep") < 0.5 * wall.get("sleep"), "sleeping section's CPU " + cpu + ", wall " + wall);
      assertTrue(wall.get("sleep") >= 0.19, "wall " + wall);
    } finally {
      ai.lathe.model.nn.Timers.enable(false);
    }
  }

  @Test
  void otherIsNeverNegative() {
    StepProfile p = StepProfile.of(Map.of("mlp", 12.0), 1, 10.0, 10.0);
    assertEquals(0.0, p.stages().get("other"));
  }
}
