package ai.lathe.model.cli;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.HugePages;
import ai.lathe.model.nn.Matmul;
import ai.lathe.model.nn.Par;
import ai.lathe.model.nn.QuantMode;
import ai.lathe.model.nn.Sgemm;
import ai.lathe.model.nn.Timers;
import ai.lathe.model.train.AdamW;
import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.Flops;
import ai.lathe.model.train.SftTrainer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code lathe bench}: training throughput of a random Llama with LoRA or DoRA, on a dense or NF4
 * base, next to this machine's measured sgemm rate, with the memory each variant holds. The last
 * line is one JSON object.
 */
public final class BenchCommand {
  public static final String USAGE = """
      usage: lathe bench [--family llama|llama3|qwen2|qwen3|mistral] [--head-dim N] [--sliding-window N]
                         [--dim 512] [--layers 4] [--heads 8] [--kv-heads 8] [--ffn 1376] [--vocab 32000] [--seq 256] [--batch 4] [--rank 16]
                         [--targets q_proj,k_proj,v_proj,o_proj] [--steps 5] [--warmup 2]
                         [--threads N] [--prompt-fraction 0] [--adapter lora|dora]
                         [--quantize nf4 [--double-quant]] [--matrix] [--tied]
                         [--preset llama-3.2-1b|qwen2.5-0.5b|llama-3-8b] [--gradient-checkpointing] [--weights f32|bf16]
        Trains the adapter on random tokens, SFT and then DPO (the same sequences as pairs, policy
        only, reference precomputed), and prints tokens/s, achieved GFLOP/s, the machine's sgemm
        GFLOP/s and memory (frozen weights, adapter, off-heap, heap). --matrix runs SFT for LoRA and
        DoRA on a dense, an NF4 and a double-quantised NF4 base. --tied: the LM head is the embedding
        (tie_word_embeddings). --targets all-linear: the seven projections. --preset takes a real
        model's shape (seq 512, batch 1, r 16 on all-linear unless given) with BF16 frozen weights (NF4
        projections with --quantize nf4), built directly, skips DPO, and adds the peak RSS (VmHWM) next
        to the memory advice the jobs print. --weights bf16 holds a random model's matrices in BF16 (as
        a BF16 checkpoint loads) instead of F32. The console and the JSON ("profile") break the SFT
        step down by stage: attention, projections (q,k,v,o), mlp, head_loss, norms_rope, optimizer,
        other; then the frozen-weight products by kind and shape (x·Wᵀ forward, dy·W input gradient)
        with their rate in place ("frozen_products"). The last line is a JSON object.""";

  private BenchCommand() {}

  /** One measured configuration. */
  record Variant(String adapter, String quantize, boolean doubleQuant) {
    String label() {
      return adapter.toUpperCase(java.util.Locale.ROOT) + (quantize.equals("none") ? "" : " on NF4"
          + (doubleQuant ? " + double quant" : ""));
    }
  }

  public static int run(String[] argv) throws Exception {
    Args a = new Args("bench", argv, Set.of("double-quant", "matrix", "gradient-checkpointing", "tied")).allow(Set.of(
        "dim", "layers", "heads", "kv-heads", "ffn", "vocab", "seq", "batch", "rank", "targets", "steps", "warmup",
        "threads", "prompt-fraction", "adapter", "quantize", "family", "head-dim", "sliding-window", "preset", "weights"));
    String preset = a.str("preset", null);
    int dim = a.integer("dim", 512);
    int heads = a.integer("heads", 8);
    int seq = a.integer("seq", preset != null ? 512 : 256);
    int bsz = a.integer("batch", preset != null ? 1 : 4);
    int threads = a.integer("threads", Runtime.getRuntime().availableProcessors());
    String family = a.str("family", "llama");
    LlamaConfig c = LlamaConfig.family(family, a.integer("vocab", 32000), dim, a.integer("layers", 4), heads,
        a.integer("kv-heads", heads), a.integer("ffn", 1376), a.integer("head-dim", 0),
        family.equals("llama3") ? 500000.0 : 10000.0, a.flag("tied"), Math.max(seq, 2048),
        family.equals("mistral") ? a.integer("sliding-window", 4096) : 0);
    if (preset != null) {
      c = BenchPresets.config(preset);
      dim = c.hiddenSize();
      heads = c.numHeads();
    }
    List<String> targets = Arrays.asList(a.str("targets", preset != null ? "all-linear"
        : "q_proj,k_proj,v_proj,o_proj").split(","));
    int rank = a.integer("rank", 16);
    String quantize = a.str("quantize", "none");
    if (!quantize.equals("none") && !quantize.equals("nf4") || a.flag("double-quant") && quantize.equals("none")) {
      throw new IllegalArgumentException("--quantize takes nf4 (--double-quant needs it), got " + quantize);
    }
    String adapter = a.str("adapter", "lora");
    if (!adapter.equals("lora") && !adapter.equals("dora")) {
      throw new IllegalArgumentException("--adapter takes lora or dora, got " + adapter);
    }
    List<Variant> variants = new ArrayList<>();
    if (a.flag("matrix")) {
      for (String q : List.of("none", "nf4", "nf4-dq")) {
        for (String ad : List.of("lora", "dora")) {
          variants.add(new Variant(ad, q.startsWith("nf4") ? "nf4" : "none", q.equals("nf4-dq")));
        }
      }
    } else {
      variants.add(new Variant(adapter, quantize, a.flag("double-quant")));
    }
    Par.setThreads(threads);
    Timers.enable(true);
    System.out.printf("bench: dim %d, layers %d, heads %d/%d kv, ffn %d, vocab %d, seq %d, batch %d, r %d on %s, "
        + "%d threads%n", dim, c.numLayers(), heads, c.numKvHeads(), c.intermediateSize(), c.vocabSize(), seq, bsz, rank,
        targets, threads);
    Sgemm.Peak peaks = Sgemm.measure(1024, 1024, 1024, 2.0);
    double peak = peaks.best();
    System.out.printf("sgemm 1024x1024x1024: %.1f GFLOP/s (best of ND4J sgemm %.1f, oneDNN matmul %.1f); "
        + "products on %s%n", peak, peaks.nd4j(), peaks.oneDnn(), Matmul.engine());
    Random rng = new Random(0);
    List<int[]> ids = new ArrayList<>();
    int[] start = new int[bsz];
    for (int b = 0; b < bsz; b++) {
      int[] s = new int[seq];
      for (int i = 0; i < seq; i++) {
        s[i] = rng.nextInt(c.vocabSize());
      }
      ids.add(s);
      start[b] = Math.max(1, (int) (a.number("prompt-fraction", 0.0) * seq));
    }
    Batch batch = Batch.of(ids, start, seq, 0);
    int warm = Math.max(1, a.integer("warmup", preset != null ? 1 : 3));
    int steps = a.integer("steps", preset != null ? 2 : 5);
    boolean ckpt = a.flag("gradient-checkpointing");
    if (preset != null && a.flag("matrix")) {
      throw new Args.UsageException("bench: --preset measures one variant, not --matrix");
    }
    LlamaWeights dense = preset != null ? BenchPresets.weights(c, presetQuant(variants.get(0)))
        : RandomLlama.create(c, 1, 0.02, 0.0, DataType.FLOAT);
    String weights = a.str("weights", preset != null ? "bf16" : "f32");
    if (!weights.equals("f32") && !weights.equals("bf16") || preset != null && weights.equals("f32")) {
      throw new Args.UsageException("bench: --weights takes f32 or bf16 (a --preset is always bf16), got " + weights);
    }
    if (preset == null && weights.equals("bf16")) {
      dense = BenchPresets.toBf16(dense);
    }
    ObjectMapper om = new ObjectMapper();
    ArrayNode rows = om.createArrayNode();
    List<String> table = new ArrayList<>();
    for (Variant v : variants) {
      LlamaWeights w = dense.quantize(v.quantize(), v.doubleQuant());
      LoraConfig lc = new LoraConfig(rank, 2.0 * rank, targets, 0.0, false, v.adapter().equals("dora"), Map.of(),
          Map.of());
      AdapterSet ad = AdapterSet.init(w, lc, 1, DataType.FLOAT);
      LlamaModel m = new LlamaModel(w, ad, DataType.FLOAT);
      m.setGradientCheckpointing(ckpt);
      List<Param> params = ad.params();
      AdamW opt = new AdamW(params, 0.9, 0.999, 1e-8, 0.0);
      double flops = Flops.of(c, ad, bsz, seq, batch.targetCount()).trainStep();
      double[] fwd = new double[1];
      List<StepProfile> prof = new ArrayList<>();
      double sftSec = measure(v.label() + " SFT", warm, steps, s -> {
        long t0 = System.nanoTime();
        double[] nll = m.forward(batch, true, s);
        fwd[0] += s >= warm ? (System.nanoTime() - t0) / 1e9 : 0;
        double[] wts = new double[nll.length];
        Arrays.fill(wts, 1.0 / nll.length);
        ad.zeroGrads();
        m.backward(wts);
        long to = Timers.start();
        AdamW.clipGradNorm(params, 1.0);
        opt.step(1e-4);
        Timers.stop("optimizer", to);
        return Arrays.stream(nll).average().orElse(0);
      }, prof::add);
      ProductProfile products = ProductProfile.of(Timers.productsAndReset(), steps, peak);
      products.print(System.out);
      double tokS = (double) bsz * seq / sftSec;
      double gflops = flops / sftSec / 1e9;
      System.out.printf("%s SFT: %.0f tokens/s, %.1f GFLOP/s achieved (%.0f%% of sgemm peak %.1f), step %.3f s, "
          + "forward %.0f%%%n", v.label(), tokS, gflops, 100 * gflops / peak, peak, sftSec, 100 * fwd[0] / steps / sftSec);
      ObjectNode o = rows.addObject().put("variant", v.label()).put("sft_tokens_per_s", round(tokS))
          .put("achieved_gflops", round(gflops)).put("utilisation", Math.round(1000 * gflops / peak) / 1000.0)
          .put("step_seconds", sftSec).put("flops_per_step", flops);
      prof.forEach(p -> p.putInto(o.putObject("profile")));
      products.putInto(o.putArray("frozen_products"));
      if (!a.flag("matrix") && preset == null) {
        if (bsz >= 2) {
          double dpo = dpoTokensPerSecond(m, ids, start, seq, warm, steps);
          System.out.printf("DPO (policy only, reference precomputed): %.0f tokens/s (%.2fx SFT's)%n", dpo, dpo / tokS);
          o.put("dpo_tokens_per_s", round(dpo));
        } else { // DPO trains on (chosen, rejected) pairs: a batch of one sequence has none
          System.out.println("DPO (policy only, reference precomputed): n/a (needs --batch 2 or more: pairs)");
          o.putNull("dpo_tokens_per_s");
        }
        ai.lathe.model.gen.DecodeBench.report(m, bsz, o);
      }
      Memory mem = Memory.of(w, ad);
      mem.putInto(o);
      o.put("huge_page_bytes", HugePages.collapsedBytes());
      if (preset != null) {
        PeakMemory.report(o, c, 2, presetQuant(v), bsz, seq, ckpt, ad.parameterCount());
      }
      table.add(String.format("%-28s %8.0f %9.1f %12.1f %10.1f %10.1f %10.1f", v.label(), tokS, gflops,
          mem.projectionBytes() / 1048576.0, mem.frozenBytes() / 1048576.0, mem.offHeapBytes() / 1048576.0,
          mem.heapBytes() / 1048576.0));
      m.releaseWorkspaces();
    }
    System.out.printf("huge pages (-Dlathe.hugepages): %s, %.1f MiB of buffers moved onto them%n",
        HugePages.enabled() ? "on" : "off", HugePages.collapsedBytes() / 1048576.0);
    System.out.printf("%n%-28s %8s %9s %12s %10s %10s %10s%n", "variant", "tokens/s", "GFLOP/s", "proj. MiB",
        "frozen MiB", "RSS MiB", "heap MiB");
    table.forEach(System.out::println);
    ObjectNode out = om.createObjectNode();
    out.put("sgemm_gflops", round(peak)).put("sgemm_nd4j_gflops", round(peaks.nd4j()))
        .put("sgemm_onednn_gflops", round(peaks.oneDnn())).put("gemm", Matmul.engine()).put("threads", threads);
    ObjectNode first = (ObjectNode) rows.get(0);
    // the single-variant keys scripts read, then every variant
    first.fields().forEachRemaining(e -> {
      if (!e.getKey().equals("variant")) {
        out.set(e.getKey(), e.getValue());
      }
    });
    out.set("variants", rows);
    System.out.println(out);
    return 0;
  }

  static QuantMode presetQuant(Variant v) {
    return v.quantize().equals("none") ? QuantMode.NONE : v.doubleQuant() ? QuantMode.NF4_DQ : QuantMode.NF4;
  }

  static double round(double x) {
    return Math.round(x * 10) / 10.0;
  }

  /** The same sequences as bsz/2 pairs (chosen, rejected) sharing the prompt, reference precomputed. */
  static double dpoTokensPerSecond(LlamaModel m, List<int[]> ids, int[] start, int seq, int warm, int steps) {
    List<DpoTrainer.Pair> pairs = new ArrayList<>();
    for (int b = 0; b + 1 < ids.size(); b += 2) {
      int[] rj = ids.get(b + 1).clone();
      System.arraycopy(ids.get(b), 0, rj, 0, start[b]);
      pairs.add(new DpoTrainer.Pair(ids.get(b), start[b], rj, start[b], -seq * 10.0, -seq * 10.0));
    }
    if (pairs.isEmpty()) {
      throw new IllegalArgumentException("DPO throughput needs at least two sequences (one pair), got " + ids.size());
    }
    DpoTrainer dpo = new DpoTrainer(m, new SftTrainer.Options(pairs.size(), 1, seq, 1e-4, 0, 1000, 0, 0, 1.0, 1),
        "sigmoid", 0.1, 0);
    double sec = measure("DPO", warm, steps, s -> dpo.step(List.of(pairs)).metrics().mean("loss"));
    return 2.0 * pairs.size() * seq / sec;
  }

  /**
   * Memory a variant holds: frozen projections and all frozen weights (as stored: NF4 codes and
   * scales), adapter, the process's resident set (ND4J's off-heap arrays, workspaces, the NF4
   * dequantisation scratch, the JVM) and the Java heap in use.
   */
  record Memory(long projectionBytes, long frozenBytes, long adapterBytes, long offHeapBytes, long heapBytes) {
    static Memory of(LlamaWeights w, AdapterSet a) {
      System.gc();
      Runtime rt = Runtime.getRuntime();
      return new Memory(w.projectionBytes(), w.frozenBytes(), 4 * a.parameterCount(),
          org.bytedeco.javacpp.Pointer.physicalBytes(), rt.totalMemory() - rt.freeMemory());
    }

    void putInto(ObjectNode o) {
      o.put("projection_weight_bytes", projectionBytes).put("frozen_weight_bytes", frozenBytes)
          .put("adapter_bytes", adapterBytes).put("rss_bytes", offHeapBytes).put("heap_bytes", heapBytes);
    }
  }

  /** Runs warm + steps steps, printing each; returns the mean seconds of the measured steps. */
  static double measure(String what, int warm, int steps, java.util.function.IntToDoubleFunction step) {
    return measure(what, warm, steps, step, p -> { });
  }

  /** As above; the measured steps' per-stage profile is printed and handed to profileSink. */
  static double measure(String what, int warm, int steps, java.util.function.IntToDoubleFunction step,
      java.util.function.Consumer<StepProfile> profileSink) {
    double tot = 0;
    double cpu0 = 0;
    for (int s = 0; s < warm + steps; s++) {
      long t0 = System.nanoTime();
      double loss = step.applyAsDouble(s);
      double sec = (System.nanoTime() - t0) / 1e9;
      if (s == warm - 1) {
        Timers.secondsAndReset(); // the breakdown covers the measured steps only
        Timers.productsAndReset();
        cpu0 = StepProfile.processCpuSeconds();
      }
      tot += s >= warm ? sec : 0;
      System.out.printf("%s step %d: %.3f s, loss %.4f%n", what, s, sec, loss);
    }
    double cpu = (StepProfile.processCpuSeconds() - cpu0) / steps;
    Map<String, Double> sectionCpu = Timers.cpuSeconds();
    StepProfile p = StepProfile.of(Timers.secondsAndReset(), sectionCpu, steps, tot / steps, cpu);
    p.print(System.out);
    profileSink.accept(p);
    return tot / steps;
  }
}
