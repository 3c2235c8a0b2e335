package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** 16-bit frozen weights: conversions against the IEEE/bfloat16 bit layouts, and the widened gemm. */
class HalfLinearTest {

  @Test
  void conversionsMatchTheBitLayouts() {
    assertEquals((short) 0x3f80, HalfFloat.toBf16(1f));
    assertEquals((short) 0xc040, HalfFloat.toBf16(-3f));
    assertEquals((short) 0x3f80, HalfFloat.toBf16(Float.intBitsToFloat(0x3f808000))); // tie to even (down)
    assertEquals((short) 0x3f82, HalfFloat.toBf16(Float.intBitsToFloat(0x3f818000))); // tie to even (up)
    assertEquals((short) 0x3c00, HalfFloat.toF16(1f));
    assertEquals((short) 0x7bff, HalfFloat.toF16(65504f));
    assertEquals((short) 0x7c00, HalfFloat.toF16(65520f));
    assertEquals((short) 0x0001, HalfFloat.toF16(0x1p-24f));
    assertEquals((short) 0x0400, HalfFloat.toF16(0x1p-14f));
    assertEquals((short) 0x2e66, HalfFloat.toF16(0.1f));
    assertEquals((short) 0xc000, HalfFloat.toF16(-2f));
    assertEquals(0.0999755859375f, HalfFloat.f16((short) 0x2e66));
    // every finite f16 widens and narrows back to itself; the same for bf16
    for (int bits = 0; bits < 0x10000; bits++) {
      short s = (short) bits;
      float f = HalfFloat.f16(s);
      if (!Float.isNaN(f)) {
        assertEquals(s, HalfFloat.toF16(f), "f16 " + Integer.toHexString(bits));
      }
      float g = HalfFloat.bf16(s);
      if (!Float.isNaN(g)) {
        assertEquals(s, HalfFloat.toBf16(g), "bf16 " + Integer.toHexString(bits));
      }
    }
  }

  static Buf.Half randomHalf(boolean bf16, int out, int in, long seed) {
    Random r = new Random(seed);
    short[] bits = new short[out * in];
    for (int i = 0; i < bits.length; i++) {
      float v = (float) (0.1 * r.nextGaussian());
      bits[i] = bf16 ? HalfFloat.toBf16(v) : HalfFloat.toF16(v);
    }
    return Buf.Half.ofBits(bits, bf16, out, in);
  }

  /** Widening is exact, so a 16-bit weight computes what a dense F32 copy of it computes, tiled or not. */
  @Test
  void forwardAndBackwardEqualTheDenseWidenedWeight() {
    for (boolean bf16 : new boolean[] {true, false}) {
      Buf.Half w = randomHalf(bf16, 37, 24, 3);
      DenseLinear dense = new DenseLinear(new HalfLinear(w).dense());
      for (int i = 0; i < 37 * 24; i += 97) {
        assertEquals(bf16 ? HalfFloat.bf16(w.bits(i)) : HalfFloat.f16(w.bits(i)), dense.dense().getFloat(i));
      }
      for (int tile : new int[] {HalfLinear.TILE_ELEMS, 24 * 5, 1}) { // one tile, tiles of 5 rows (and a short last), rows
        HalfLinear h = new HalfLinear(w, tile);
        INDArray x = Nd4j.rand(DataType.FLOAT, 6, 24).subi(0.5);
        INDArray y0 = Nd4j.create(DataType.FLOAT, 6, 37);
        INDArray y1 = Nd4j.create(DataType.FLOAT, 6, 37);
        dense.forward(x, y0);
        h.forward(x, y1);
        assertEquals(0.0, y0.sub(y1).amaxNumber().doubleValue(), 1e-6, "forward, tile " + tile);
        INDArray dy = Nd4j.rand(DataType.FLOAT, 6, 37);
        INDArray dx0 = Nd4j.rand(DataType.FLOAT, 6, 24);
        INDArray dx1 = dx0.dup();
        dense.backwardInput(dy, dx0, 0.5);
        h.backwardInput(dy, dx1, 0.5);
        assertEquals(0.0, dx0.sub(dx1).amaxNumber().doubleValue(), 1e-6, "backward, tile " + tile);
        assertTrue(dx0.norm2Number().doubleValue() > 0.1);
      }
      assertEquals(2L * 37 * 24, new HalfLinear(w).bytes());
      double[] n0 = dense.rowSquaredNorms();
      double[] n1 = new HalfLinear(w).rowSquaredNorms();
      for (int j = 0; j < n0.length; j++) {
        assertEquals(n0[j], n1[j], 1e-6);
      }
    }
  }
  /** On the ND4J ops a tile is widened by a cast on the device: the same products, no host access. */
  @Test
  void theNd4jOpsWidenWithoutHostAccess() {
    Buf.Half w = randomHalf(true, 37, 24, 4);
    DenseLinear dense = new DenseLinear(new HalfLinear(w).dense());
    INDArray x = Nd4j.rand(DataType.FLOAT, 6, 24).subi(0.5);
    INDArray dy = Nd4j.rand(DataType.FLOAT, 6, 37);
    INDArray y0 = Nd4j.create(DataType.FLOAT, 6, 37);
    INDArray dx0 = Nd4j.create(DataType.FLOAT, 6, 24);
    dense.forward(x, y0);
    dense.backwardInput(dy, dx0, 0.0);
    Kernels.use(Kernels.ND4J);
    try {
      for (int tile : new int[] {HalfLinear.TILE_ELEMS, 24 * 5}) {
        HalfLinear h = new HalfLinear(w, tile);
        INDArray y1 = Nd4j.create(DataType.FLOAT, 6, 37);
        INDArray dx1 = Nd4j.create(DataType.FLOAT, 6, 24);
        Buf.ACCESSES.set(0);
        Buf.counting = true;
        h.forward(x, y1);
        h.backwardInput(dy, dx1, 0.0);
        Buf.counting = false;
        assertEquals(0, Buf.ACCESSES.get(), "host accesses, tile " + tile);
        assertEquals(0.0, y0.sub(y1).amaxNumber().doubleValue(), 1e-6, "forward, tile " + tile);
        assertEquals(0.0, dx0.sub(dx1).amaxNumber().doubleValue(), 1e-6, "backward, tile " + tile);
      }
      // the JVM path's widening is what the counter sees
      Kernels.use(Kernels.JAVA);
      Buf.ACCESSES.set(0);
      Buf.counting = true;
      new HalfLinear(w).forward(x, Nd4j.create(DataType.FLOAT, 6, 37));
      Buf.counting = false;
      assertTrue(Buf.ACCESSES.get() > 0);
    } finally {
      Buf.counting = false;
      Kernels.use(null);
    }
  }
}
