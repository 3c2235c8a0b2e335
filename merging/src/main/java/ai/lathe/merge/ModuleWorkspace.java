package ai.lathe.merge;

import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterDeltas;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.io.PeftAdapterFile;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One thread's buffers for merging modules: one update buffer per adapter (grown to the largest
 * module seen, then reused), the gemm target per module shape (off-heap) and the select scratch.
 * A module's merge allocates nothing of its size except the result; memory is one workspace per
 * thread, so threads × (adapters + 1) × the largest module.
 */
final class ModuleWorkspace {
  private float[][] deltas = new float[0][];
  private final Map<Long, INDArray> products = new HashMap<>();
  private final int[] hist = new int[Sparsify.HIST];
  /** Nanoseconds, over all threads, spent reading and writing tensors (I/O) and computing (arithmetic). */
  static final java.util.concurrent.atomic.LongAdder IO_NANOS = new java.util.concurrent.atomic.LongAdder();
  static final java.util.concurrent.atomic.LongAdder MATH_NANOS = new java.util.concurrent.atomic.LongAdder();

  private float[] buffer(int i, int n) {
    if (deltas.length <= i) {
      deltas = java.util.Arrays.copyOf(deltas, i + 1);
    }
    if (deltas[i] == null || deltas[i].length < n) {
      deltas[i] = new float[n];
    }
    return deltas[i];
  }

  /**
   * Merges one module as {@link AdapterMerger#mergeModule} does (same values, exactly); null when
   * no adapter targets it. base: the module's dequantised base weight, needed by DoRA adapters
   * (null: read it when needed).
   */
  float[] merge(MergeConfig mc, List<AdapterMerger.Source> sources, int layer, String module, int out, int in,
      float[] base) throws IOException {
    int n = out * in;
    int k = sources.size();
    if (sources.stream().noneMatch(s -> s.file().adapts(layer, module))) {
      return null; // (no buffer is sized for a module nobody adapts, e.g. the MLP of an attention merge)
    }
    float[][] bufs = new float[k][];
    for (int i = 0; i < k; i++) {
      bufs[i] = buffer(i, n);
      boolean has = delta(sources.get(i), layer, module, out, in, bufs[i]);
      if (has && sources.get(i).config().useDora()) {
        float[] w = base != null ? base : AdapterMerger.baseWeight(mc, layer, module, out, in);
        dora(sources.get(i), layer, module, out, in, w, bufs[i]);
      }
    }
    long t0 = System.nanoTime();
    double[] w = new double[k];
    double[] dens = new double[k];
    for (int i = 0; i < k; i++) {
      w[i] = sources.get(i).in().weight();
      dens[i] = sources.get(i).in().density();
    }
    float[] merged = new float[n];
    long moduleSeed = layer * 16L + LlamaWeights.MODULES.indexOf(module);
    mc.method().mergeInto(bufs, n, w, dens, mc.params(), moduleSeed, merged, hist);
    MATH_NANOS.add(System.nanoTime() - t0);
    return merged;
  }

  /**
   * s·B·A of one module into dst[0, out·in) by one gemm into a reused off-heap target (the same
   * call, and so the same values, as {@link AdapterMerger#delta}); false, with dst zeroed, when
   * the adapter does not adapt the module.
   */
  boolean delta(AdapterMerger.Source s, int layer, String module, int out, int in, float[] dst) throws IOException {
    int n = out * in;
    PeftAdapterFile.Keys keys = s.file().keys(layer, module);
    if (keys == null) {
      java.util.Arrays.fill(dst, 0, n, 0f);
      return false;
    }
    long t0 = System.nanoTime();
    String path = LoraConfig.modulePath(layer, module);
    int r = s.file().rank(layer, module); // shapes validated on open: A [r, in], B [out, r]
    float[] af = s.file().read(keys.loraA());
    float[] bf = s.file().read(keys.loraB());
    long t1 = System.nanoTime();
    IO_NANOS.add(t1 - t0);
    INDArray a = Nd4j.create(af, new long[] {r, in}, 'c');
    INDArray b = Nd4j.create(bf, new long[] {out, r}, 'c');
    INDArray dw = products.computeIfAbsent((long) out << 32 | in, x -> Nd4j.create(DataType.FLOAT, out, in));
    Nd4j.gemm(b, a, dw, false, false, s.config().scaleFor(path), 0.0);
    dw.data().asNioFloat().get(dst, 0, n);
    for (int i = 0; i < n; i++) {
      if (!Float.isFinite(dst[i])) {
        throw new IllegalArgumentException(s.file().weightsFile() + ": non-finite values in " + path);
      }
    }
    MATH_NANOS.add(System.nanoTime() - t1);
    return true;
  }

  /** DoRA's update in place: d ← m/‖W + d‖ ⊙ (W + d) − W, row by row (as {@link AdapterMerger#delta}). */
  void dora(AdapterMerger.Source s, int layer, String module, int out, int in, float[] w, float[] d)
      throws IOException {
    float[] m = s.file().read(s.file().keys(layer, module).magnitude()); // validated: [out]
    AdapterDeltas.doraInPlace(w, d, m, out, in);
  }
}
