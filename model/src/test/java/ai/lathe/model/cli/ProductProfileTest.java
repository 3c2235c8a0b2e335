package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.nn.DenseLinear;
import ai.lathe.model.nn.Timers;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/** The bench's frozen-product profile: per-step rows, their rates, and what the engine records. */
class ProductProfileTest {
  @Test
  void rowsArePerStepSlowestFirstWithTheirRates() {
    Map<String, double[]> totals = new LinkedHashMap<>(); // over 2 steps: {seconds, calls, flops}
    totals.put("x·Wᵀ 8x4", new double[] {1.0, 4, 300e9});
    totals.put("dy·W 8x4", new double[] {3.0, 4, 300e9});
    ProductProfile p = ProductProfile.of(totals, 2, 200.0);
    assertEquals("dy·W 8x4", p.rows().get(0).kind());
    assertEquals(1.5, p.rows().get(0).seconds(), 1e-12);
    assertEquals(2.0, p.rows().get(0).calls(), 1e-12);
    assertEquals(100.0, p.rows().get(0).gflops(), 1e-9); // 150 GFLOP in 1.5 s
    assertEquals(300.0, p.rows().get(1).gflops(), 1e-9); // 150 GFLOP in 0.5 s
    assertEquals(2.0, p.seconds(), 1e-12);
    assertEquals(150.0, p.gflops(), 1e-9); // 300 GFLOP in 2 s
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    p.print(new PrintStream(buf, true, StandardCharsets.UTF_8));
    String text = buf.toString(StandardCharsets.UTF_8);
    assertTrue(text.contains("300.0 GFLOP at 150.0 GFLOP/s = 75% of sgemm peak"), text);
    ArrayNode a = new ObjectMapper().createArrayNode();
    p.putInto(a);
    JsonNode first = a.get(0);
    assertEquals("dy·W 8x4", first.get("kind").asText());
    assertEquals(100.0, first.get("gflops").asDouble(), 1e-9);
    assertEquals(1.5, first.get("seconds").asDouble(), 1e-12);
  }

  @Test
  void denseWeightsRecordEachProductWithItsFlops() {
    var w = Nd4j.rand(DataType.FLOAT, 5, 4);
    var lin = new DenseLinear(w);
    var x = Nd4j.rand(DataType.FLOAT, 3, 4);
    var y = Nd4j.zeros(DataType.FLOAT, 3, 5);
    var dx = Nd4j.zeros(DataType.FLOAT, 3, 4);
    Timers.enable(true);
    try {
      Timers.productsAndReset();
      lin.forward(x, y);
      lin.forward(x, y);
      lin.backwardInput(y, dx, 0.0);
      Map<String, double[]> got = Timers.productsAndReset();
      assertEquals(2, got.size(), got.keySet().toString());
      assertEquals(2, got.get("x·Wᵀ 5x4")[1], 0.0);
      assertEquals(2 * 2.0 * 3 * 5 * 4, got.get("x·Wᵀ 5x4")[2], 0.0);
      assertEquals(1, got.get("dy·W 5x4")[1], 0.0);
      assertEquals(2.0 * 3 * 5 * 4, got.get("dy·W 5x4")[2], 0.0);
      assertTrue(got.get("dy·W 5x4")[0] > 0);
      // a BF16 weight names its dtype (its time includes the widening)
      var half = new ai.lathe.model.nn.HalfLinear((ai.lathe.model.nn.Buf.Half) ai.lathe.model.nn.Buf.of(
          w.castTo(DataType.BFLOAT16)));
      half.forward(x, y);
      assertEquals(2.0 * 3 * 5 * 4, Timers.productsAndReset().get("x·Wᵀ 5x4 bfloat16")[2], 0.0);
    } finally {
      Timers.enable(false);
      Timers.productsAndReset();
      Timers.secondsAndReset();
    }
  }
}
