package ai.lathe.merge;

import ai.lathe.model.Config;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.cli.Args;
import ai.lathe.model.io.AtomicDir;
import ai.lathe.model.io.PeftAdapter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code lathe bench-merge}: time and peak memory (heap and ND4J off-heap) of a TIES merge of N
 * random rank-r adapters on a model's attention projections, for each requested depth, to show
 * that peak memory does not grow with the number of layers. Last line is JSON.
 */
public final class BenchMergeCommand {
  public static final String USAGE = """
      usage: lathe bench-merge [--adapters 10] [--rank 16] [--dim 4096] [--layers 32] [--kv-heads 32]
                               [--method ties] [--out-rank 16]
        --layers may list several depths (2,4,8) to compare peak memory.""";

  private BenchMergeCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("bench-merge", argv, Set.of()).allow(Set.of("adapters", "rank", "dim", "layers", "kv-heads",
        "method", "out-rank"));
    int n = a.integer("adapters", 10);
    int rank = a.integer("rank", 16);
    int dim = a.integer("dim", 4096);
    int heads = Math.max(1, dim / 128);
    ObjectNode json = new ObjectMapper().createObjectNode();
    for (String ls : a.str("layers", "32").split(",")) {
      int layers = Integer.parseInt(ls.trim());
      LlamaConfig c = new LlamaConfig("llama", 32000, dim, layers, heads, a.integer("kv-heads", heads), 4 * dim,
          1e-5, 10000, false, 4096, 1, 2);
      Path dir = Files.createTempDirectory("lathe-bench-merge");
      try {
        Files.createDirectories(dir.resolve("base"));
        new ObjectMapper().writeValue(dir.resolve("base/config.json").toFile(), c.toJson());
        StringBuilder yaml = new StringBuilder("method: " + a.str("method", "ties") + "\nbase_model: " + dir.resolve("base")
            + "\nparameters: {density: 0.5, sign: total, normalize: true, lambda: 1.0, seed: 0}\nadapters:\n");
        for (int i = 0; i < n; i++) {
          AdapterSet s = AdapterSet.init(c, LoraConfig.of(rank, 2.0 * rank, List.of("q_proj", "k_proj", "v_proj", "o_proj")),
              i, DataType.FLOAT);
          Random r = new Random(i);
          for (Param p : s.params()) {
            if (p.name().contains("lora_B")) {
              float[] v = new float[(int) p.value().length()];
              for (int j = 0; j < v.length; j++) {
                v[j] = (float) (0.01 * r.nextGaussian());
              }
              p.value().assign(org.nd4j.linalg.factory.Nd4j.create(v, p.value().shape(), 'c'));
            }
          }
          PeftAdapter.write(dir.resolve("a" + i), s, "bench", null);
          yaml.append("  - {path: ").append(dir.resolve("a" + i)).append(", weight: 1.0}\n");
        }
        yaml.append("output: {kind: adapter, rank: ").append(a.integer("out-rank", 16)).append(", path: ")
            .append(dir.resolve("out")).append("}\n");
        Files.writeString(dir.resolve("merge.yaml"), yaml.toString());
        MergeConfig mc = MergeConfig.from(Config.load(dir.resolve("merge.yaml"), List.of()).validate(ConfigReference.MERGE));
        System.gc();
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
          p.resetPeakUsage();
        }
        AtomicLong offPeak = new AtomicLong(org.bytedeco.javacpp.Pointer.totalBytes());
        Thread sampler = new Thread(() -> {
          while (!Thread.currentThread().isInterrupted()) {
            offPeak.accumulateAndGet(org.bytedeco.javacpp.Pointer.totalBytes(), Math::max);
            try {
              Thread.sleep(5);
            } catch (InterruptedException e) {
              return;
            }
          }
        });
        sampler.setDaemon(true);
        sampler.start();
        // live memory at the end of each module (after a GC), while its updates are still referenced
        AtomicLong livePeak = new AtomicLong();
        AtomicLong gcNanos = new AtomicLong();
        AdapterMerger.moduleHook = () -> {
          long g = System.nanoTime();
          System.gc();
          Runtime rt = Runtime.getRuntime();
          livePeak.accumulateAndGet(rt.totalMemory() - rt.freeMemory(), Math::max);
          gcNanos.addAndGet(System.nanoTime() - g);
        };
        long t0 = System.nanoTime();
        AdapterMerger.Result res;
        try {
          res = AdapterMerger.run(mc, Path.of(mc.baseModel()));
        } finally {
          AdapterMerger.moduleHook = null;
        }
        double sec = (System.nanoTime() - t0 - gcNanos.get()) / 1e9;
        sampler.interrupt();
        long heapPeak = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
          if (p.getType() == MemoryType.HEAP) {
            heapPeak += p.getPeakUsage().getUsed();
          }
        }
        double err = res.truncationErrors().values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
        System.out.printf("%s of %d rank-%d adapters, dim %d, %d layers (%d modules): %.1f s, peak live heap %.0f MiB "
            + "(peak heap incl. garbage %.0f MiB), peak off-heap %.0f MiB, max truncation error %.4f%n", mc.method().id, n,
            rank, dim, layers, res.truncationErrors().size(), sec, livePeak.get() / 1048576.0, heapPeak / 1048576.0,
            offPeak.get() / 1048576.0, err);
        json.put("layers_" + layers + "_peak_live_heap_mib", livePeak.get() >> 20);
        json.put("layers_" + layers + "_seconds", Math.round(sec * 10) / 10.0);
        json.put("layers_" + layers + "_peak_heap_mib", heapPeak >> 20);
        json.put("layers_" + layers + "_peak_offheap_mib", offPeak.get() >> 20);
      } finally {
        AtomicDir.deleteTree(dir);
      }
    }
    System.out.println(json);
    return 0;
  }
}
