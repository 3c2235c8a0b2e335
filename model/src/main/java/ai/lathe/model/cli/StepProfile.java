package ai.lathe.model.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.management.ManagementFactory;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where a training step's time goes, by stage: the engine's timed sections ({@code nn/Timers},
 * forward and backward) grouped into attention, projections (q, k, v, o with their adapters),
 * MLP (gate, up, down, SwiGLU), head + loss, norms/RoPE and optimizer; "other" is the rest of
 * the measured step (embedding, residual adds, gathers, gradient zeroing). Seconds are per step;
 * cpuStages are the process's CPU seconds in each stage (all threads), empty when not measured.
 */
public record StepProfile(Map<String, Double> stages, Map<String, Double> cpuStages, double stepSeconds,
    double cpuSecondsPerStep) {
  /** Stage names in print order; each groups the sections whose name starts with one of its prefixes. */
  static final List<String> STAGES = List.of("attention", "projections", "mlp", "head_loss", "norms_rope",
      "optimizer", "other");

  public StepProfile {
    stages = Map.copyOf(stages);
    cpuStages = Map.copyOf(cpuStages);
  }

  /** The stage a Timers section belongs to; sections of unknown names count as "other". */
  static String stageOf(String section) {
    String s = section.endsWith(".back") ? section.substring(0, section.length() - 5) : section;
    return switch (s) {
      case "attention" -> "attention";
      case "projections" -> "projections";
      case "mlp" -> "mlp";
      case "head", "softmax", "loss" -> "head_loss";
      case "norms_rope" -> "norms_rope";
      case "optimizer" -> "optimizer";
      default -> "other";
    };
  }

  /**
   * Groups section totals (seconds over {@code steps} steps) and attributes the rest of the step to
   * "other" (never negative: sections overlapping the step boundary are clipped).
   */
  public static StepProfile of(Map<String, Double> sectionSeconds, int steps, double stepSeconds,
      double cpuSecondsPerStep) {
    return new StepProfile(group(sectionSeconds, steps, stepSeconds), Map.of(), stepSeconds, cpuSecondsPerStep);
  }

  /** As above, with each section's CPU seconds grouped the same way (the rest of the step's CPU is "other"). */
  public static StepProfile of(Map<String, Double> sectionSeconds, Map<String, Double> sectionCpuSeconds, int steps,
      double stepSeconds, double cpuSecondsPerStep) {
    return new StepProfile(group(sectionSeconds, steps, stepSeconds), group(sectionCpuSeconds, steps, cpuSecondsPerStep),
        stepSeconds, cpuSecondsPerStep);
  }

  private static Map<String, Double> group(Map<String, Double> sectionSeconds, int steps, double perStep) {
    Map<String, Double> st = new LinkedHashMap<>();
    STAGES.forEach(s -> st.put(s, 0.0));
    sectionSeconds.forEach((k, v) -> st.merge(stageOf(k), v / steps, Double::sum));
    double timed = st.values().stream().mapToDouble(Double::doubleValue).sum();
    st.merge("other", Math.max(0.0, perStep - timed), Double::sum);
    return st;
  }

  /** This process's CPU time so far, in seconds (all threads, native BLAS threads included). */
  static double processCpuSeconds() {
    var os = ManagementFactory.getOperatingSystemMXBean();
    return os instanceof com.sun.management.OperatingSystemMXBean s ? s.getProcessCpuTime() / 1e9 : Double.NaN;
  }

  double share(String stage) {
    double total = stages.values().stream().mapToDouble(Double::doubleValue).sum();
    return total > 0 ? stages.get(stage) / total : 0.0;
  }

  public void print(java.io.PrintStream out) {
    out.printf("  step profile (s/step, share%s): step %.3f s wall, %.3f s CPU%n",
        cpuStages.isEmpty() ? "" : ", CPU-s/step", stepSeconds, cpuSecondsPerStep);
    for (String s : STAGES) {
      out.printf("    %-12s %8.3f  %5.1f%%%s%n", s, stages.get(s), 100 * share(s),
          cpuStages.isEmpty() ? "" : String.format("  %8.3f CPU-s", cpuStages.get(s)));
    }
  }

  /** {"step_seconds", "cpu_seconds", "stages": {stage: {"seconds", "share"[, "cpu_seconds"]}}}. */
  public void putInto(ObjectNode o) {
    o.put("step_seconds", stepSeconds).put("cpu_seconds", cpuSecondsPerStep);
    ObjectNode st = o.putObject("stages");
    for (String s : STAGES) {
      ObjectNode so = st.putObject(s).put("seconds", Math.round(stages.get(s) * 1e4) / 1e4)
          .put("share", Math.round(share(s) * 1e4) / 1e4);
      if (!cpuStages.isEmpty()) {
        so.put("cpu_seconds", Math.round(cpuStages.get(s) * 1e4) / 1e4);
      }
    }
  }
}
