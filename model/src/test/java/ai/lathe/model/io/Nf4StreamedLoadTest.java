package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.nn.Nf4Blocks;
import ai.lathe.model.nn.Nf4Linear;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * NF4 quantisation as the checkpoint is read, slice by slice: the codes, block scales and
 * double-quantised scales equal, bit for bit, those of quantising the fully loaded weight
 * (Nf4Linear.quantize, the whole-array twin held to bitsandbytes by Nf4Test).
 */
class Nf4StreamedLoadTest {
  // ffn 100: [100, 64] projections of 6400 values = 100 blocks, not a multiple of the test slices
  static final LlamaConfig C = new LlamaConfig("llama", 300, 64, 2, 4, 2, 100, 1e-5, 10000, false, 64, 1, 2);

  static void assertSameState(Nf4Linear.State want, Nf4Linear.State got, String what) {
    assertEquals(want.out(), got.out(), what);
    assertEquals(want.in(), got.in(), what);
    assertArrayEquals(want.packed(), got.packed(), what + " codes");
    assertArrayEquals(want.absmax(), got.absmax(), what + " absmax");
    assertArrayEquals(want.nestedCodes(), got.nestedCodes(), what + " nested codes");
    assertArrayEquals(want.nestedAbsmax(), got.nestedAbsmax(), what + " nested absmax");
    assertEquals(Float.floatToRawIntBits(want.offset()), Float.floatToRawIntBits(got.offset()), what + " offset");
  }

  /** Values with a zero block, a short last block and an odd count (the pad nibble is code 7, value 0). */
  static float[] values(int n, long seed) {
    Random r = new Random(seed);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = i >= 64 && i < 128 ? 0f : (float) (r.nextGaussian() * (1 + i % 7));
    }
    return v;
  }

  static Nf4Linear sliced(float[] v, int out, int in, int slice, boolean dq) {
    Nf4Blocks q = new Nf4Blocks(out, in);
    float[] buf = new float[slice];
    for (int start = 0; q.remaining() > 0; start += slice) {
      int count = (int) Math.min(slice, q.remaining());
      System.arraycopy(v, start, buf, 0, count);
      Arrays.fill(buf, count, slice, Float.NaN); // stale tail values must not leak into the last block
      q.accept(buf, count);
    }
    return q.finish(dq, DataType.FLOAT, "test");
  }

  @Test
  void slicedQuantisationEqualsWholeArrayBitForBit() {
    for (int[] shape : new int[][] {{3, 45}, {10, 100}, {7, 640}}) {
      int n = shape[0] * shape[1];
      float[] v = values(n, n);
      for (boolean dq : new boolean[] {false, true}) {
        Nf4Linear whole = Nf4Linear.quantize(Nd4j.create(v, new long[] {shape[0], shape[1]}, 'c'), dq, DataType.FLOAT);
        for (int slice : new int[] {64, 192, n + 64 - n % 64}) {
          assertSameState(whole.state(), sliced(v, shape[0], shape[1], slice, dq).state(),
              Arrays.toString(shape) + " slice " + slice + " dq " + dq);
        }
      }
    }
  }

  @Test
  void streamedLoadEqualsQuantisingTheLoadedWeights(@TempDir Path tmp) throws Exception {
    RandomLlama.write(tmp.resolve("m"), C, 5, "BF16", null);
    for (boolean dq : new boolean[] {false, true}) {
      LlamaWeights full = HfCheckpoint.load(tmp.resolve("m"), DataType.FLOAT).quantizeNf4(dq);
      LlamaWeights streamed = HfCheckpoint.load(tmp.resolve("m"), DataType.FLOAT, "nf4", dq);
      try (HfCheckpoint ck = HfCheckpoint.open(tmp.resolve("m"))) {
        for (int l = 0; l < C.numLayers(); l++) {
          for (String m : LlamaWeights.MODULES) {
            String what = "layer " + l + " " + m + " dq " + dq;
            Nf4Linear want = (Nf4Linear) full.layers[l].module(m);
            assertTrue(streamed.layers[l].module(m) instanceof Nf4Linear, what);
            assertSameState(want.state(), ((Nf4Linear) streamed.layers[l].module(m)).state(), what);
            int[] s = C.moduleShape(m);
            // several slices per weight, the last one short
            assertSameState(want.state(), ck.quantizeStreamed(LlamaWeights.moduleKey(l, m), s[0], s[1], dq,
                DataType.FLOAT, 192).state(), what + " slice 192");
          }
        }
      }
    }
  }

  @Test
  void wrongShapeNamesFileAndTensor(@TempDir Path tmp) throws Exception {
    RandomLlama.write(tmp.resolve("m"), C, 5, "BF16", null);
    try (HfCheckpoint ck = HfCheckpoint.open(tmp.resolve("m"))) {
      var e = assertThrows(java.io.IOException.class,
          () -> ck.quantizeStreamed("model.layers.0.mlp.up_proj.weight", 64, 100, false, DataType.FLOAT));
      assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("up_proj")
          && e.getMessage().contains("[100, 64]"), e.getMessage());
    }
  }

  @Test
  void refusesSlicesOffBlockBoundariesAndUnfinishedWeights() {
    Nf4Blocks q = new Nf4Blocks(4, 64);
    assertThrows(IllegalArgumentException.class, () -> q.accept(new float[100], 100));
    q.accept(new float[64], 64);
    var e = assertThrows(IllegalStateException.class, () -> q.finish(false, DataType.FLOAT, "w"));
    assertTrue(e.getMessage().contains("192 of 256"), e.getMessage());
  }
}
