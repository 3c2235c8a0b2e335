package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.Nf4;
import ai.lathe.model.nn.Nf4Linear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * NF4 against bitsandbytes' definitions (tests/python/nf4_ref.py, golden/nf4.json): code book,
 * dynamic map, packed codes, block scales and double quantisation; round-trip error, memory,
 * padding, the quantised model against its dequantised twin, corrupt states.
 */
class Nf4Test {
  static final JsonNode G;

  static {
    try {
      G = new ObjectMapper().readTree(Path.of("src/test/resources/golden/nf4.json").toFile());
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static INDArray goldenWeight() {
    JsonNode w = G.get("weight");
    float[] v = new float[w.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) w.get(i).asDouble();
    }
    return Nd4j.create(v, new long[] {G.get("shape").get(0).asInt(), G.get("shape").get(1).asInt()}, 'c');
  }

  @Test
  void codeBookAndDynamicMapAreBitsandbytes() {
    for (int i = 0; i < 16; i++) {
      assertEquals((float) G.get("nf4").get(i).asDouble(), Nf4.CODE[i], 0f, "code " + i);
    }
    float[] map = Nf4.dynamicMap();
    assertEquals(256, map.length);
    for (int i = 0; i < 256; i++) {
      // torch's float32 linspace and means can differ from ours by float rounding (a few ulps)
      assertEquals((float) G.get("dynamic_map").get(i).asDouble(), map[i], 4 * Math.ulp(map[i]) + 1e-12, "map " + i);
    }
  }

  @Test
  void codesAndScalesMatchTheReference() {
    INDArray w = goldenWeight();
    Nf4Linear q = Nf4Linear.quantize(w, false, DataType.FLOAT);
    JsonNode single = G.get("single");
    byte[] packed = q.state().packed();
    assertEquals(single.get("packed").size(), packed.length);
    for (int i = 0; i < packed.length; i++) {
      assertEquals(single.get("packed").get(i).asInt(), packed[i] & 0xff, "byte " + i);
    }
    float[] scales = q.blockScales();
    for (int i = 0; i < scales.length; i++) {
      assertEquals((float) single.get("absmax").get(i).asDouble(), scales[i], 0f, "absmax " + i);
    }
    Nf4Linear dq = Nf4Linear.quantize(w, true, DataType.FLOAT);
    JsonNode dbl = G.get("double");
    assertEquals(dbl.get("offset").asDouble(), dq.state().offset(), 1e-7 * dq.state().offset());
    int mismatched = 0;
    for (int i = 0; i < dq.state().nestedCodes().length; i++) {
      mismatched += (dq.state().nestedCodes()[i] & 0xff) == dbl.get("nested_codes").get(i).asInt() ? 0 : 1;
    }
    assertEquals(0, mismatched, "nested codes");
    for (int i = 0; i < dq.state().nestedAbsmax().length; i++) {
      assertEquals(dbl.get("nested_absmax").get(i).asDouble(), dq.state().nestedAbsmax()[i], 1e-8);
    }
    // the double-quantised scales stay close to the fp32 ones
    float[] s2 = dq.blockScales();
    for (int i = 0; i < scales.length; i++) {
      assertEquals(scales[i], s2[i], 0.01 * scales[i], "scale " + i);
    }
    // 130·127 = 16510 is not a multiple of 64: the last block is short, bytes = ceil(n/2)
    assertEquals(8255, packed.length);
    assertEquals(258, scales.length);
    INDArray back = q.dense();
    double err = back.sub(w).amaxNumber().doubleValue();
    assertEquals(single.get("max_abs_error").asDouble(), err, 1e-7);
  }

  @Test
  void roundTripErrorAndMemoryOfANormalMatrix() {
    Random r = new Random(3);
    int out = 1024;
    int in = 1024;
    float[] v = new float[out * in];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) (0.02 * r.nextGaussian());
    }
    INDArray w = Nd4j.create(v, new long[] {out, in}, 'c');
    double maxHalfGap = 0;
    for (int k = 1; k < 16; k++) {
      maxHalfGap = Math.max(maxHalfGap, (Nf4.CODE[k] - Nf4.CODE[k - 1]) / 2.0);
    }
    for (boolean dq : new boolean[] {false, true}) {
      Nf4Linear q = Nf4Linear.quantize(w, dq, DataType.FLOAT);
      Buf back = Buf.of(q.dense());
      float[] scales = q.blockScales();
      double se = 0;
      double worst = 0;
      for (int i = 0; i < v.length; i++) {
        double e = Math.abs(back.get(i) - v[i]);
        se += e * e;
        // nearest code: at most half the widest gap of the code book times the block's absmax
        // (plus the double-quantised scale's own error)
        double bound = maxHalfGap * scales[i / 64] + (dq ? Math.abs(v[i]) * 0.01 : 0) + 1e-9;
        worst = Math.max(worst, e / bound);
      }
      double rel = Math.sqrt(se / v.length) / 0.02;
      assertTrue(worst <= 1.0, "an element beyond the bound: " + worst);
      assertTrue(rel < 0.12, "relative RMS error " + rel);
      double bpp = (double) q.bytes() / v.length;
      System.out.printf("NF4%s: relative RMS error %.4f, %.4f bytes/param%n", dq ? " + double quant" : "", rel, bpp);
      assertTrue(dq ? bpp <= 0.6 : bpp <= 0.57, "bytes per parameter " + bpp);
    }
  }

  @Test
  void quantisedModelEqualsItsDequantisedTwinAndTrains() {
    LlamaConfig c = new LlamaConfig("llama", 61, 64, 2, 4, 2, 100, 1e-5, 10000, false, 64, 1, 2);
    LlamaWeights w = RandomLlama.create(c, 5, 0.02, 0.0, DataType.FLOAT);
    LlamaWeights q = w.quantizeNf4(true);
    assertTrue(q.projectionBytes() < 0.6 * w.projectionBytes() / 4, q.projectionBytes() + " vs " + w.projectionBytes());
    // the twin: dense weights holding exactly the dequantised values
    LlamaWeights.Layer[] dl = new LlamaWeights.Layer[c.numLayers()];
    for (int l = 0; l < dl.length; l++) {
      LlamaWeights.Layer x = q.layers[l];
      dl[l] = new LlamaWeights.Layer(x.attnNorm(), lin(x.q()), lin(x.k()), lin(x.v()), lin(x.o()), x.mlpNorm(),
          lin(x.gate()), lin(x.up()), lin(x.down()));
    }
    LlamaWeights twin = new LlamaWeights(c, q.embed, dl, q.finalNorm, q.lmHead);
    Batch b = TinyModels.randomBatch(c, 2, 20, 1);
    for (boolean dora : new boolean[] {false, true}) {
      var lc = new ai.lathe.model.adapter.LoraConfig(4, 8, List.of("all-linear"), 0, false, dora, Map.of(), Map.of());
      AdapterSet a1 = AdapterSet.init(q, lc, 1, DataType.FLOAT);
      AdapterSet a2 = AdapterSet.init(twin, lc, 1, DataType.FLOAT);
      LlamaModel m1 = new LlamaModel(q, a1, DataType.FLOAT);
      LlamaModel m2 = new LlamaModel(twin, a2, DataType.FLOAT);
      double[] n1 = m1.forward(b, false, 0);
      double[] n2 = m2.forward(b, false, 0);
      double[] wts = new double[n1.length];
      java.util.Arrays.fill(wts, 1.0 / n1.length);
      m1.backward(wts);
      m2.backward(wts);
      for (int i = 0; i < n1.length; i++) {
        assertEquals(n2[i], n1[i], 0.0, "nll " + i);
      }
      for (int i = 0; i < a1.params().size(); i++) {
        assertEquals(0.0, a1.params().get(i).grad().sub(a2.params().get(i).grad()).amaxNumber().doubleValue(), 0.0,
            a1.params().get(i).name());
      }
    }
  }

  static ai.lathe.model.nn.FrozenLinear lin(ai.lathe.model.nn.FrozenLinear f) {
    return new ai.lathe.model.nn.DenseLinear(f.dense());
  }

  @Test
  void corruptStatesAreRefused() {
    Nf4Linear q = Nf4Linear.quantize(goldenWeight(), true, DataType.FLOAT);
    Nf4Linear.State s = q.state();
    var e1 = assertThrows(IllegalArgumentException.class, () -> new Nf4Linear(new Nf4Linear.State(s.out(), s.in(),
        java.util.Arrays.copyOf(s.packed(), s.packed().length + 1), null, s.nestedCodes(), s.nestedAbsmax(),
        s.nestedMap(), s.offset()), DataType.FLOAT, "layer 0 q_proj"));
    assertTrue(e1.getMessage().contains("layer 0 q_proj") && e1.getMessage().contains("packed bytes"), e1.getMessage());
    float[] bad = s.nestedAbsmax().clone();
    bad[1] = Float.NaN;
    var e2 = assertThrows(IllegalArgumentException.class, () -> new Nf4Linear(new Nf4Linear.State(s.out(), s.in(),
        s.packed(), null, s.nestedCodes(), bad, s.nestedMap(), s.offset()), DataType.FLOAT, "w"));
    assertTrue(e2.getMessage().contains("nested absmax[1] is NaN"), e2.getMessage());
    var e3 = assertThrows(IllegalArgumentException.class, () -> new Nf4Linear(new Nf4Linear.State(s.out(), s.in(),
        s.packed(), null, s.nestedCodes(), s.nestedAbsmax(), new float[16], s.offset()), DataType.FLOAT, "w"));
    assertTrue(e3.getMessage().contains("map of 16"), e3.getMessage());
    var e4 = assertThrows(IllegalArgumentException.class, () -> new Nf4Linear(new Nf4Linear.State(s.out(), s.in(),
        s.packed(), new float[3], null, null, null, 0f), DataType.FLOAT, "w"));
    assertTrue(e4.getMessage().contains("3 absmax values, expected 258"), e4.getMessage());
  }
}
