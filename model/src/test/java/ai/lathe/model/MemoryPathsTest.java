package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.DenseLinear;
import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.HalfLinear;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** BF16 frozen weights, the chunked head inside the model, and activation checkpointing. */
class MemoryPathsTest {

  /** Gradients of every adapter parameter and of the embeddings' output after one forward/backward. */
  static double[][] gradients(LlamaModel m, AdapterSet a, Batch b, double[] weights) {
    a.zeroGrads();
    m.forward(b, true, 5);
    INDArray dx = m.backward(weights);
    List<Param> ps = a.params();
    double[][] g = new double[ps.size() + 1][];
    for (int i = 0; i < ps.size(); i++) {
      g[i] = ps.get(i).grad().dup().data().asDouble();
    }
    g[ps.size()] = dx.dup().data().asDouble();
    return g;
  }

  /** Checkpointing recomputes the same arithmetic: bit-identical gradients, LoRA with dropout and DoRA, two families. */
  @Test
  void checkpointedGradientsEqualTheStoredOnesExactly() {
    for (LlamaConfig c : List.of(TinyModels.gqaUntied(), FamilyGradientTest.qwen3())) {
      for (boolean dora : new boolean[] {false, true}) {
        for (DataType dt : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
          LlamaWeights w = RandomLlama.create(c, 7, 0.3, 0.2, dt);
          LoraConfig lc = new LoraConfig(2, 4.0, List.of("all-linear"), 0.2, false, dora, Map.of(), Map.of());
          AdapterSet a = AdapterSet.init(w, lc, 3, dt);
          for (Param p : a.params()) { // a nonzero B so every path carries gradient
            p.value().addi(org.nd4j.linalg.factory.Nd4j.rand(dt, p.value().shape()).muli(0.1));
          }
          LlamaModel m = new LlamaModel(w, a, dt);
          Batch b = TinyModels.randomBatch(c, 2, 9, 4);
          double[] wts = new double[m.forward(b, false, 0).length];
          java.util.Arrays.fill(wts, 0.7);
          double[][] plain = gradients(m, a, b, wts);
          m.setGradientCheckpointing(true);
          double[][] ck = gradients(m, a, b, wts);
          for (int i = 0; i < plain.length; i++) {
            assertArrayEquals(plain[i], ck[i], 0.0, c.modelType() + (dora ? " DoRA " : " LoRA ") + dt + " gradient " + i);
          }
          assertTrue(java.util.Arrays.stream(plain[0]).anyMatch(x -> x != 0));
          // and forward alone (score) is the same with shared layer buffers
          double[] lp = m.sequenceLogProbs(b);
          m.setGradientCheckpointing(false);
          assertArrayEquals(m.sequenceLogProbs(b), lp, 0.0);
        }
      }
    }
  }

  /**
   * Tied head through the chunked cross-entropy (chunks of 3 rows), in double: the gradient with
   * respect to embed_tokens is the embedding path (backward's input gradient) plus the head path
   * (the head-gradient hook's dzᵀ·x), checked against finite differences of the loss.
   */
  @Test
  void tiedHeadGradientThroughTheChunkedLoss() {
    LlamaConfig c = FamilyGradientTest.llama3Tied();
    LlamaWeights w = RandomLlama.create(c, 11, 0.3, 0.2, DataType.DOUBLE);
    LlamaModel m = new LlamaModel(w, null, DataType.DOUBLE);
    m.setHeadChunkRows(3);
    Batch b = TinyModels.randomBatch(c, 2, 8, 9);
    double[] weights = new double[m.forward(b, false, 0).length];
    assertTrue(weights.length > 6, "several chunks");
    for (int i = 0; i < weights.length; i++) {
      weights[i] = 0.3 + 0.1 * i;
    }
    int d = c.hiddenSize();
    double[] dE = new double[c.vocabSize() * d];
    int[] chunks = {0};
    m.setHeadGradient((dz, x) -> {
      chunks[0]++;
      INDArray g = dz.transpose().mmul(x);
      for (int i = 0; i < dE.length; i++) {
        dE[i] += g.getDouble(i);
      }
    });
    m.forward(b, false, 0);
    INDArray dx = m.backward(weights);
    assertEquals((weights.length + 2) / 3, chunks[0]);
    int[] tok = b.tokens();
    for (int q = 0; q < tok.length; q++) {
      for (int j = 0; j < d; j++) {
        dE[tok[q] * d + j] += dx.getDouble((long) q * d + j);
      }
    }
    m.setHeadGradient(null);
    double h = 1e-5;
    int checked = 0;
    for (int idx = 0; idx < dE.length; idx += 3) {
      double o = w.embed.get(idx);
      w.embed.set(idx, o + h);
      double lp = GradientCheckTest.loss(m, b, weights);
      w.embed.set(idx, o - h);
      double lm = GradientCheckTest.loss(m, b, weights);
      w.embed.set(idx, o);
      double fd = (lp - lm) / (2 * h);
      assertTrue(GradientCheckTest.relErr(fd, dE[idx]) < 1e-4 || Math.abs(fd - dE[idx]) < 1e-9,
          "embed[" + idx + "]: " + dE[idx] + " vs " + fd);
      checked++;
    }
    assertTrue(checked > 150, "checked " + checked);
  }

  /** A BF16 checkpoint loads as 16-bit weights (tied head shares them) and scores as its widened F32 copy does. */
  @Test
  void bf16CheckpointStaysBf16AndScoresAsItsWidenedCopy(@TempDir Path tmp) throws Exception {
    LlamaConfig c = FamilyGradientTest.llama3Tied();
    LlamaWeights src = RandomLlama.create(c, 12, 0.3, 0.2, DataType.FLOAT);
    Path dir = tmp.resolve("bf16");
    HfCheckpoint.write(dir, c, HfCheckpoint.tensors(src), "BF16", Long.MAX_VALUE, null);
    LlamaWeights w = HfCheckpoint.load(dir, DataType.FLOAT);
    assertTrue(w.embed instanceof Buf.Half h && h.bf16(), "embed held as BF16");
    assertTrue(w.lmHead instanceof HalfLinear hl && hl.weight() == w.embed, "tied head shares embed");
    assertTrue(w.layers[0].q() instanceof HalfLinear);
    long f32Bytes = 4L * c.parameterCount();
    assertTrue(w.frozenBytes() < 0.55 * f32Bytes, w.frozenBytes() + " vs F32 " + f32Bytes);
    // the twin: every matrix widened to a dense F32 copy
    LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.numLayers()];
    for (int l = 0; l < layers.length; l++) {
      FrozenLinear[] mods = new FrozenLinear[LlamaWeights.MODULES.size()];
      for (int k = 0; k < mods.length; k++) {
        mods[k] = new DenseLinear(w.layers[l].module(LlamaWeights.MODULES.get(k)).dense());
      }
      layers[l] = w.layers[l].withModules(mods);
    }
    Buf embed = Buf.of(w.lmHead.dense());
    LlamaWeights twin = new LlamaWeights(c, embed, layers, w.finalNorm, new DenseLinear(embed.arr));
    Batch b = TinyModels.randomBatch(c, 2, 8, 3);
    double[] half = new LlamaModel(w, null, DataType.FLOAT).sequenceLogProbs(b);
    double[] dense = new LlamaModel(twin, null, DataType.FLOAT).sequenceLogProbs(b);
    double[] dbl = new LlamaModel(HfCheckpoint.load(dir, DataType.DOUBLE), null, DataType.DOUBLE).sequenceLogProbs(b);
    for (int i = 0; i < half.length; i++) {
      assertEquals(dense[i], half[i], 1e-5);
      assertEquals(dbl[i], half[i], 1e-3);
    }
    assertTrue(Files.exists(dir.resolve("model.safetensors")));
    // written back (merge into the base, export): the 16-bit values, widened
    float[] e = HfCheckpoint.tensors(w).get("model.embed_tokens.weight").data();
    for (int i = 0; i < e.length; i += 7) {
      assertEquals((float) w.embed.get(i), e[i]);
    }
  }

  /**
   * Elements of every distinct activation buffer a workspace holds (shared buffers once), by
   * reflection, looking into its per-layer records (LayerActs) and the layer's scratch (DecoderLayer).
   */
  static long workspaceFloats(Object ws) throws Exception {
    return floats(ws, java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>()));
  }

  private static long floats(Object holder, java.util.Set<Object> seen) throws Exception {
    long n = 0;
    for (java.lang.reflect.Field f : holder.getClass().getDeclaredFields()) {
      if (java.lang.reflect.Modifier.isStatic(f.getModifiers())) {
        continue;
      }
      f.setAccessible(true);
      Object v = f.get(holder);
      Object[] items = v instanceof Object[] arr ? arr : new Object[] {v};
      for (Object o : items) {
        if (o instanceof Buf b && seen.add(b.arr)) {
          n += b.arr.length();
        } else if ((o instanceof LayerActs || o instanceof DecoderLayer) && seen.add(o)) {
          n += floats(o, seen);
        }
      }
      if (v instanceof ai.lathe.model.nn.LmHeadLoss h) {
        n += h.bytes() / 8; // double-precision test model: 8 bytes per element
      }
    }
    return n;
  }

  /** The memory advice counts exactly the activations the model allocates, with and without checkpointing. */
  @Test
  void memoryEstimateCountsTheWorkspace() throws Exception {
    for (LlamaConfig c : List.of(TinyModels.gqaUntied(), FamilyGradientTest.qwen3())) {
      LlamaModel m = new LlamaModel(RandomLlama.create(c, 1, 0.1, 0, DataType.DOUBLE), null, DataType.DOUBLE);
      for (boolean ck : new boolean[] {false, true}) {
        m.setGradientCheckpointing(ck);
        long est = ai.lathe.model.train.MemoryEstimate.activationFloats(c, 2, 9, ck);
        assertEquals(est, workspaceFloats(m.workspace(2, 9)), c.modelType() + " checkpointing " + ck);
      }
      assertTrue(ai.lathe.model.train.MemoryEstimate.activationFloats(c, 2, 9, true)
          < ai.lathe.model.train.MemoryEstimate.activationFloats(c, 2, 9, false));
    }
  }
}
