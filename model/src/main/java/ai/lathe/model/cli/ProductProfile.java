package ai.lathe.model.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * The frozen-weight products of a training step by kind and weight shape (forward x·Wᵀ, input
 * gradient dy·W; {@code nn/Timers.product}), each with its rate measured in place against the
 * machine's sgemm peak (a 16-bit or NF4 weight's kind names its dtype: its time includes the
 * widening or dequantisation to F32). The products are most of a step's FLOPs, so their rate in place bounds the
 * step's utilisation; the stages' time outside them is the engine's own.
 */
public record ProductProfile(List<Row> rows, double peakGflops) {
  /** One kind of product: seconds, calls and FLOPs per step. */
  public record Row(String kind, double seconds, double calls, double flops) {
    double gflops() {
      return seconds > 0 ? flops / seconds / 1e9 : 0.0;
    }
  }

  public ProductProfile {
    rows = List.copyOf(rows);
  }

  /** From {@code Timers.productsAndReset()} totals ({seconds, calls, flops}) over steps steps, slowest first. */
  public static ProductProfile of(Map<String, double[]> totals, int steps, double peakGflops) {
    List<Row> rows = new ArrayList<>();
    totals.forEach((k, v) -> rows.add(new Row(k, v[0] / steps, v[1] / steps, v[2] / steps)));
    rows.sort(Comparator.comparingDouble(Row::seconds).reversed());
    return new ProductProfile(rows, peakGflops);
  }

  public double seconds() {
    return rows.stream().mapToDouble(Row::seconds).sum();
  }

  public double flops() {
    return rows.stream().mapToDouble(Row::flops).sum();
  }

  /** The products' combined rate, GFLOP/s. */
  public double gflops() {
    return seconds() > 0 ? flops() / seconds() / 1e9 : 0.0;
  }

  public void print(java.io.PrintStream out) {
    if (rows.isEmpty()) {
      return;
    }
    out.printf("  frozen-weight products (per step): %.3f s, %.1f GFLOP at %.1f GFLOP/s = %.0f%% of sgemm peak%n",
        seconds(), flops() / 1e9, gflops(), 100 * gflops() / peakGflops);
    for (Row r : rows) {
      out.printf("    %-22s %5.0f calls %8.3f s %7.1f GFLOP/s (%3.0f%%)%n", r.kind(), r.calls(), r.seconds(),
          r.gflops(), 100 * r.gflops() / peakGflops);
    }
  }

  /** [{"kind", "calls", "seconds", "gflops"}] per step. */
  public void putInto(ArrayNode a) {
    for (Row r : rows) {
      a.addObject().put("kind", r.kind()).put("calls", r.calls()).put("seconds", Math.round(r.seconds() * 1e4) / 1e4)
          .put("gflops", Math.round(r.gflops() * 10) / 10.0);
    }
  }
}
