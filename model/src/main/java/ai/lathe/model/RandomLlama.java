package ai.lathe.model;

import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.DenseLinear;
import ai.lathe.model.nn.FrozenLinear;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Seeded random weights of any supported family, initialised as transformers does (normal(0, initializer_range)
 * for projections and embeddings, ones for norms), for demos, tests and benchmarks.
 */
public final class RandomLlama {
  private RandomLlama() {}

  public static LlamaWeights create(LlamaConfig c, long seed, double std, double normJitter, DataType dt) {
    Random rng = new Random(seed);
    int d = c.hiddenSize();
    Buf embed = Buf.of(normal(rng, std, dt, c.vocabSize(), d));
    LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.numLayers()];
    for (int l = 0; l < layers.length; l++) {
      Buf n1 = norm(rng, d, normJitter, dt);
      FrozenLinear q = lin(rng, c, "q_proj", std, dt);
      FrozenLinear k = lin(rng, c, "k_proj", std, dt);
      FrozenLinear v = lin(rng, c, "v_proj", std, dt);
      FrozenLinear o = lin(rng, c, "o_proj", std, dt);
      Buf n2 = norm(rng, d, normJitter, dt);
      FrozenLinear gate = lin(rng, c, "gate_proj", std, dt);
      FrozenLinear up = lin(rng, c, "up_proj", std, dt);
      FrozenLinear down = lin(rng, c, "down_proj", std, dt);
      // Qwen2's biases: normal(0, std) so they matter (transformers zero-initialises them)
      Buf qb = c.qkvBias() ? Buf.of(normal(rng, std, dt, 1, c.qDim()).reshape(c.qDim()).dup('c')) : null;
      Buf kb = c.qkvBias() ? Buf.of(normal(rng, std, dt, 1, c.kvDim()).reshape(c.kvDim()).dup('c')) : null;
      Buf vb = c.qkvBias() ? Buf.of(normal(rng, std, dt, 1, c.kvDim()).reshape(c.kvDim()).dup('c')) : null;
      Buf qn = c.qkNorm() ? norm(rng, c.headDim(), normJitter, dt) : null;
      Buf kn = c.qkNorm() ? norm(rng, c.headDim(), normJitter, dt) : null;
      layers[l] = new LlamaWeights.Layer(n1, q, k, v, o, n2, gate, up, down, qb, kb, vb, qn, kn);
    }
    Buf fin = norm(rng, d, normJitter, dt);
    FrozenLinear head = c.tieWordEmbeddings()
        ? new DenseLinear(embed.arr) : new DenseLinear(normal(rng, std, dt, c.vocabSize(), d));
    return new LlamaWeights(c, embed, layers, fin, head);
  }

  private static FrozenLinear lin(Random rng, LlamaConfig c, String m, double std, DataType dt) {
    int[] s = c.moduleShape(m);
    return new DenseLinear(normal(rng, std, dt, s[0], s[1]));
  }

  private static Buf norm(Random rng, int d, double jitter, DataType dt) {
    double[] v = new double[d];
    for (int i = 0; i < d; i++) {
      v[i] = 1.0 + jitter * rng.nextGaussian();
    }
    return Buf.of(Nd4j.create(v, new long[] {d}, DataType.DOUBLE).castTo(dt));
  }

  static INDArray normal(Random rng, double std, DataType dt, long rows, long cols) {
    int n = Math.toIntExact(rows * cols);
    if (dt == DataType.DOUBLE) {
      double[] v = new double[n];
      for (int i = 0; i < n; i++) {
        v[i] = rng.nextGaussian() * std;
      }
      return Nd4j.create(v, new long[] {rows, cols}, DataType.DOUBLE);
    }
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (rng.nextGaussian() * std);
    }
    return Nd4j.create(v, new long[] {rows, cols}, 'c');
  }

  /** Writes a random model folder in Hugging Face format, with the given tokenizer folder's files. */
  public static void write(Path out, LlamaConfig c, long seed, String dtype, Path tokenizerDir) throws IOException {
    LlamaWeights w = create(c, seed, 0.02, 0.0, DataType.FLOAT);
    HfCheckpoint.write(out, c, HfCheckpoint.tensors(w), dtype, 2L << 30, tokenizerDir);
  }

  /**
   * Writes a random checkpoint tensor by tensor (1M values at a time), so a model of any size is
   * made in a few MB of memory: matrices uniform with standard deviation 0.02 from a hash of
   * (seed, tensor, index), norm weights 1. Used by init-model for large shapes.
   */
  public static void writeStreamed(Path out, LlamaConfig c, long seed, String dtype, Path tokenizerDir)
      throws IOException {
    java.util.LinkedHashMap<String, long[]> shapes = HfCheckpoint.shapes(c);
    ai.lathe.model.io.AtomicDir.write(out, tmp -> {
      try (var w = new ai.lathe.model.io.StreamingCheckpointWriter(tmp, shapes, dtype, 5L << 30)) {
        for (String name : shapes.keySet()) {
          boolean norm = name.endsWith("norm.weight");
          long salt = seed * 0x9E3779B97F4A7C15L ^ name.hashCode();
          w.put(name, (start, dst, count) -> {
            for (int i = 0; i < count; i++) {
              long h = (start + i + salt) * 0xD1B54A32D192ED03L;
              h ^= h >>> 29;
              h *= 0xBF58476D1CE4E5B9L;
              // uniform in [-√3·0.02, √3·0.02): standard deviation 0.02
              dst[i] = norm ? 1f : (float) (((h >>> 40) * 0x1p-24 - 0.5) * 2 * 0.034641016);
            }
          });
        }
      }
      HfCheckpoint.writeConfigAndTokenizer(tmp, c, dtype, tokenizerDir);
    });
  }
}
