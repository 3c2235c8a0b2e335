package ai.lathe.merge;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.cli.Args;
import ai.lathe.model.cli.PeakMemory;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.io.AtomicDir;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.io.PeftKeys;
import ai.lathe.model.io.Safetensors;
import ai.lathe.model.io.StreamingCheckpointWriter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * {@code lathe bench-merge}: a TIES merge of N random rank-r adapters on q, k, v, o of a model
 * shape (a preset or --dim), to an adapter or into a generated base, at each requested depth.
 * Reports wall and CPU time, time per module, the share of the time in arithmetic vs tensor
 * I/O, and the peak RSS of the process (VmHWM, reset between depths) to show that memory does
 * not grow with depth. Last line is JSON.
 */
public final class BenchMergeCommand {
  public static final String USAGE = """
      usage: lathe bench-merge [--preset llama-2-7b|llama-3-8b] [--adapters 10] [--rank 16] [--layers 32]
                               [--dim 4096] [--kv-heads 32] [--method ties] [--out-rank 16]
                               [--output adapter|model] [--base-dtype BF16|F32] [--quantize none|nf4]
        --layers may list several depths (4,8,32) to compare peak memory. --output model first writes
        a base of that shape (BF16: 2 bytes a parameter; an 8B model with 32 layers takes 16 GB).
        Threads: -Dlathe.merge.threads (default: the cores).""";

  private BenchMergeCommand() {}

  public static void main(String[] argv) throws Exception {
    System.exit(run(argv));
  }

  /** A model shape with the given depth: a preset's, or a square one of width dim. */
  static LlamaConfig shape(String preset, int dim, int kvHeads, int layers) {
    return switch (preset) {
      case "llama-2-7b" -> new LlamaConfig("llama", 32000, 4096, layers, 32, 32, 11008, 1e-5, 10000, false, 4096, 1, 2);
      case "llama-3-8b" -> new LlamaConfig("llama", 128256, 4096, layers, 32, 8, 14336, 1e-5, 500000, false, 8192,
          128000, 128001);
      case "" -> new LlamaConfig("llama", 32000, dim, layers, Math.max(1, dim / 128), kvHeads > 0 ? kvHeads
          : Math.max(1, dim / 128), 4 * dim, 1e-5, 10000, false, 4096, 1, 2);
      default -> throw new IllegalArgumentException("--preset: unknown preset '" + preset
          + "' (llama-2-7b, llama-3-8b)");
    };
  }

  public static int run(String[] argv) throws Exception {
    Args a = new Args("bench-merge", argv, Set.of()).allow(Set.of("preset", "adapters", "rank", "dim", "layers",
        "kv-heads", "method", "out-rank", "output", "base-dtype", "quantize"));
    int n = a.integer("adapters", 10);
    int rank = a.integer("rank", 16);
    String output = a.str("output", "adapter");
    if (!output.equals("adapter") && !output.equals("model")) {
      throw new IllegalArgumentException("--output must be adapter or model, got " + output);
    }
    ObjectNode json = new ObjectMapper().createObjectNode();
    json.put("threads", AdapterMerger.threads());
    for (String ls : a.str("layers", "32").split(",")) {
      int layers = Integer.parseInt(ls.trim());
      LlamaConfig c = shape(a.str("preset", ""), a.integer("dim", 4096), a.integer("kv-heads", 0), layers);
      Path dir = Files.createTempDirectory("lathe-bench-merge");
      try {
        Files.createDirectories(dir.resolve("base"));
        if (output.equals("model")) {
          writeBase(dir.resolve("base"), c, a.str("base-dtype", "BF16"));
        } else {
          new ObjectMapper().writeValue(dir.resolve("base/config.json").toFile(), c.toJson());
        }
        StringBuilder yaml = new StringBuilder("method: " + a.str("method", "ties") + "\nbase_model: "
            + dir.resolve("base") + "\nquantize: " + a.str("quantize", "none")
            + "\nparameters: {density: 0.5, sign: total, normalize: true, lambda: 1.0, seed: 0}\nadapters:\n");
        for (int i = 0; i < n; i++) {
          writeAdapter(dir.resolve("a" + i), c, rank, i);
          yaml.append("  - {path: ").append(dir.resolve("a" + i)).append(", weight: 1.0}\n");
        }
        yaml.append("output: {kind: ").append(output).append(", rank: ").append(a.integer("out-rank", 16))
            .append(", dtype: ").append(a.str("base-dtype", "BF16")).append(", path: ").append(dir.resolve("out"))
            .append("}\n");
        Files.writeString(dir.resolve("merge.yaml"), yaml.toString());
        MergeConfig mc = MergeConfig.from(Config.load(dir.resolve("merge.yaml"), List.of())
            .validate(ConfigReference.MERGE));
        System.gc();
        boolean reset = resetPeakRss();
        long rssBefore = PeakMemory.statusKb("VmRSS");
        ModuleWorkspace.IO_NANOS.reset();
        ModuleWorkspace.MATH_NANOS.reset();
        long cpu0 = cpuNanos();
        long t0 = System.nanoTime();
        AdapterMerger.Result res = AdapterMerger.run(mc, Path.of(mc.baseModel()));
        double sec = (System.nanoTime() - t0) / 1e9;
        double cpu = (cpuNanos() - cpu0) / 1e9;
        long hwm = PeakMemory.statusKb("VmHWM");
        int modules = 4 * layers;
        // arithmetic and I/O are summed over threads: their shares, not seconds of wall time
        double io = ModuleWorkspace.IO_NANOS.sum() / 1e9;
        double math = ModuleWorkspace.MATH_NANOS.sum() / 1e9;
        double err = res.truncationErrors().values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
        System.out.printf("%s of %d rank-%d adapters to %s, %s%d layers (%d merged modules), %d merge threads: %.1f s wall "
            + "(%.2f s per module), %.1f s CPU; arithmetic %.0f%%, tensor I/O %.0f%% of thread time; peak RSS %.0f MiB "
            + "(%s; RSS before the merge %.0f MiB)%s%n", mc.method().id, n, rank, output,
            a.str("preset", "").isEmpty() ? "dim " + c.hiddenSize() + ", " : a.str("preset", "") + ", ", layers, modules,
            output.equals("adapter") ? AdapterMerger.threads() : 1, sec, sec / modules, cpu, 100 * math / (math + io), 100 * io / (math + io),
            hwm / 1024.0, reset ? "reset before the merge" : "process peak, not reset", rssBefore / 1024.0,
            output.equals("adapter") ? String.format(", max truncation error %.4f", err) : "");
        String p = "layers_" + layers + "_";
        json.put(p + "seconds", Math.round(sec * 10) / 10.0);
        json.put(p + "seconds_per_module", Math.round(sec / modules * 1000) / 1000.0);
        json.put(p + "cpu_seconds", Math.round(cpu * 10) / 10.0);
        json.put(p + "arithmetic_fraction", Math.round(1000 * math / (math + io)) / 1000.0);
        json.put(p + "io_fraction", Math.round(1000 * io / (math + io)) / 1000.0);
        json.put(p + "peak_rss_mib", hwm >> 10);
        json.put(p + "peak_rss_reset", reset);
      } finally {
        AtomicDir.deleteTree(dir);
      }
    }
    System.out.println(json);
    return 0;
  }

  /**
   * A random rank-r adapter on q, k, v, o (B non-zero, so every update is), written from plain
   * arrays one adapter at a time so that making the inputs does not inflate the RSS measured.
   */
  static void writeAdapter(Path dir, LlamaConfig c, int rank, int seed) throws IOException {
    List<String> targets = List.of("q_proj", "k_proj", "v_proj", "o_proj");
    LoraConfig lc = LoraConfig.of(rank, 2.0 * rank, targets);
    Random r = new Random(seed);
    Map<String, Safetensors.Tensor> tensors = new LinkedHashMap<>();
    for (int l = 0; l < c.numLayers(); l++) {
      for (String m : targets) {
        int[] s = c.moduleShape(m);
        float[] a = new float[rank * s[1]];
        float[] b = new float[s[0] * rank];
        float bound = (float) (1 / Math.sqrt(s[1]));
        for (int j = 0; j < a.length; j++) {
          a[j] = (2 * r.nextFloat() - 1) * bound;
        }
        for (int j = 0; j < b.length; j++) {
          b[j] = (float) (0.01 * r.nextGaussian());
        }
        String p = LoraConfig.modulePath(l, m);
        tensors.put(PeftKeys.loraA(p), new Safetensors.Tensor(new long[] {rank, s[1]}, a));
        tensors.put(PeftKeys.loraB(p), new Safetensors.Tensor(new long[] {s[0], rank}, b));
      }
    }
    ObjectMapper om = new ObjectMapper();
    AtomicDir.write(dir, tmp -> {
      om.writeValue(tmp.resolve(PeftAdapter.CONFIG).toFile(), lc.toPeftJson("bench"));
      Safetensors.write(tmp.resolve(PeftAdapter.WEIGHTS), tensors, "F32", Map.of("format", "pt"));
    });
  }

  /**
   * A base checkpoint of the shape, streamed to disk in 2 GB shards (values from a cheap
   * hash, not a real model: the merge's cost does not depend on them).
   */
  static void writeBase(Path dir, LlamaConfig c, String dtype) throws IOException {
    LinkedHashMap<String, long[]> shapes = HfCheckpoint.shapes(c);
    try (StreamingCheckpointWriter w = new StreamingCheckpointWriter(dir, shapes, dtype, 2L << 30)) {
      for (String name : shapes.keySet()) {
        int salt = name.hashCode();
        w.put(name, (start, dst, count) -> {
          for (int i = 0; i < count; i++) {
            int h = (int) (start + i) * 0x9E3779B1 ^ salt;
            dst[i] = ((h >>> 8) - (1 << 23)) * (0.02f / (1 << 23));
          }
        });
      }
    }
    new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), c.toJson());
  }

  /** Resets VmHWM to the current RSS (Linux: 5 into /proc/self/clear_refs); false where refused. */
  static boolean resetPeakRss() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
      return true;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  static long cpuNanos() {
    var os = ManagementFactory.getOperatingSystemMXBean();
    return os instanceof com.sun.management.OperatingSystemMXBean sun ? sun.getProcessCpuTime() : -1;
  }
}
