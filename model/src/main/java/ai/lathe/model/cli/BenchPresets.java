package ai.lathe.model.cli;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.HalfFloat;
import ai.lathe.model.nn.HalfLinear;
import ai.lathe.model.nn.Nf4;
import ai.lathe.model.nn.Nf4Linear;
import ai.lathe.model.nn.Par;
import ai.lathe.model.nn.QuantMode;
import java.nio.ShortBuffer;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Real model shapes for {@code bench --preset}, and their frozen weights built directly as a real
 * checkpoint would be held: BF16 matrices, or NF4 projections (random codes, absmax 0.05 per block)
 * with BF16 embeddings, so an 8B shape never needs an F32 or BF16 copy of its projections.
 */
final class BenchPresets {
  private BenchPresets() {}

  /** name → config: the published shapes (vocabulary, width, depth, heads, FFN, tying, rope). */
  static final Map<String, LlamaConfig> PRESETS = Map.of(
      "llama-3.2-1b", LlamaConfig.family("llama3", 128256, 2048, 16, 32, 8, 8192, 64, 500000.0, true, 8192, 0),
      "qwen2.5-0.5b", LlamaConfig.family("qwen2", 151936, 896, 24, 14, 2, 4864, 64, 1000000.0, true, 8192, 0),
      "llama-3-8b", LlamaConfig.family("llama3", 128256, 4096, 32, 32, 8, 14336, 128, 500000.0, false, 8192, 0));

  static LlamaConfig config(String name) {
    LlamaConfig c = PRESETS.get(name);
    if (c == null) {
      throw new Args.UsageException("bench: --preset must be one of " + new java.util.TreeSet<>(PRESETS.keySet())
          + ", got '" + name + "'");
    }
    return c;
  }

  /** Uniform in [-√3·0.02, √3·0.02) (std 0.02) from a hash of (salt, index). */
  static float value(long salt, long i) {
    long h = (i + salt) * 0xD1B54A32D192ED03L;
    h ^= h >>> 29;
    h *= 0xBF58476D1CE4E5B9L;
    return (float) (((h >>> 40) * 0x1p-24 - 0.5) * 0.069282032);
  }

  static Buf.Half bf16(long salt, int rows, int cols) {
    Buf.Half h = Buf.Half.zeros(true, rows, cols);
    ShortBuffer sb = h.rawBytes().asShortBuffer();
    Par.rows(rows, (lo, hi) -> {
      for (long i = (long) lo * cols; i < (long) hi * cols; i++) {
        sb.put((int) i, HalfFloat.toBf16(value(salt, i)));
      }
    });
    return h;
  }

  static Nf4Linear nf4(long salt, int out, int in) {
    long n = (long) out * in;
    byte[] packed = new byte[(int) ((n + 1) / 2)];
    float[] absmax = new float[(int) ((n + Nf4.BLOCK - 1) / Nf4.BLOCK)];
    for (int i = 0; i < packed.length; i++) {
      packed[i] = (byte) (Float.floatToRawIntBits(value(salt, i)) >>> 5);
    }
    java.util.Arrays.fill(absmax, 0.05f);
    return new Nf4Linear(new Nf4Linear.State(out, in, packed, absmax, null, null, null, 0f), DataType.FLOAT, "bench");
  }

  static Buf ones(int n) {
    Buf b = Buf.zeros(DataType.FLOAT, n);
    b.arr.assign(1.0);
    return b;
  }

  static Buf small(long salt, int n) {
    Buf b = Buf.zeros(DataType.FLOAT, n);
    for (int i = 0; i < n; i++) {
      b.set(i, value(salt, i));
    }
    return b;
  }

  /** A 16-bit copy of a float matrix (round to nearest even). */
  static Buf.Half toBf16(org.nd4j.linalg.api.ndarray.INDArray a) {
    Buf src = Buf.of(a);
    Buf.Half h = Buf.Half.zeros(true, a.shape());
    ShortBuffer sb = h.rawBytes().asShortBuffer();
    for (int i = 0; i < src.length(); i++) {
      sb.put(i, HalfFloat.toBf16((float) src.get(i)));
    }
    return h;
  }

  /** The same model with every matrix (embeddings, projections, untied head) held as BF16. */
  static LlamaWeights toBf16(LlamaWeights w) {
    Buf.Half embed = toBf16(w.embed.arr);
    LlamaWeights.Layer[] layers = new LlamaWeights.Layer[w.layers.length];
    for (int l = 0; l < layers.length; l++) {
      FrozenLinear[] m = new FrozenLinear[LlamaWeights.MODULES.size()];
      for (int k = 0; k < m.length; k++) {
        m[k] = new HalfLinear(toBf16(w.layers[l].module(LlamaWeights.MODULES.get(k)).dense()));
      }
      layers[l] = w.layers[l].withModules(m);
    }
    FrozenLinear head = w.config.tieWordEmbeddings() ? new HalfLinear(embed) : new HalfLinear(toBf16(w.lmHead.dense()));
    return new LlamaWeights(w.config, embed, layers, w.finalNorm, head);
  }

  /** The frozen weights of c with projections as quant (NONE: BF16; NF4 double quantisation is not built here). */
  static LlamaWeights weights(LlamaConfig c, QuantMode quant) {
    if (quant == QuantMode.NF4_DQ) {
      throw new Args.UsageException("bench: --preset builds NF4 without double quantisation");
    }
    int d = c.hiddenSize();
    Buf.Half embed = bf16(1, c.vocabSize(), d);
    LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.numLayers()];
    for (int l = 0; l < layers.length; l++) {
      FrozenLinear[] m = new FrozenLinear[LlamaWeights.MODULES.size()];
      for (int k = 0; k < m.length; k++) {
        int[] s = c.moduleShape(LlamaWeights.MODULES.get(k));
        long salt = 1000L * (l + 1) + k;
        m[k] = quant == QuantMode.NONE ? new HalfLinear(bf16(salt, s[0], s[1])) : nf4(salt, s[0], s[1]);
      }
      boolean bias = c.qkvBias();
      boolean qk = c.qkNorm();
      layers[l] = new LlamaWeights.Layer(ones(d), m[0], m[1], m[2], m[3], ones(d), m[4], m[5], m[6],
          bias ? small(l * 3L, c.qDim()) : null, bias ? small(l * 3L + 1, c.kvDim()) : null,
          bias ? small(l * 3L + 2, c.kvDim()) : null, qk ? ones(c.headDim()) : null, qk ? ones(c.headDim()) : null);
    }
    FrozenLinear head = c.tieWordEmbeddings() ? new HalfLinear(embed) : new HalfLinear(bf16(2, c.vocabSize(), d));
    return new LlamaWeights(c, embed, layers, ones(d), head);
  }
}
