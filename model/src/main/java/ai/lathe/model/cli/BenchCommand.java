package ai.lathe.model.cli;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.Par;
import ai.lathe.model.nn.Sgemm;
import ai.lathe.model.nn.Timers;
import ai.lathe.model.train.AdamW;
import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.model.train.Flops;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code lathe bench}: SFT training throughput of a random Llama with LoRA on the stated config,
 * next to this machine's measured sgemm rate. The last line is one JSON object.
 */
public final class BenchCommand {
  public static final String USAGE = """
      usage: lathe bench [--dim 512] [--layers 4] [--heads 8] [--kv-heads 8] [--ffn 1376]
                         [--vocab 32000] [--seq 256] [--batch 4] [--rank 16]
                         [--targets q_proj,k_proj,v_proj,o_proj] [--steps 5] [--warmup 2]
                         [--threads N] [--prompt-fraction 0]
        Trains LoRA on random tokens, SFT and then DPO (the same sequences as pairs, policy only,
        reference precomputed), and prints tokens/s, achieved GFLOP/s and the machine's sgemm
        GFLOP/s; the last line is a JSON object for scripts.""";

  private BenchCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("bench", argv, Set.of()).allow(Set.of("dim", "layers", "heads", "kv-heads", "ffn",
        "vocab", "seq", "batch", "rank", "targets", "steps", "warmup", "threads", "prompt-fraction"));
    int dim = a.integer("dim", 512);
    int heads = a.integer("heads", 8);
    int seq = a.integer("seq", 256);
    int bsz = a.integer("batch", 4);
    int threads = a.integer("threads", Runtime.getRuntime().availableProcessors());
    double promptFraction = a.number("prompt-fraction", 0.0);
    LlamaConfig c = new LlamaConfig("llama", a.integer("vocab", 32000), dim, a.integer("layers", 4), heads,
        a.integer("kv-heads", heads), a.integer("ffn", 1376), 1e-5, 10000.0, false, Math.max(seq, 2048), 1, 2);
    List<String> targets = Arrays.asList(a.str("targets", "q_proj,k_proj,v_proj,o_proj").split(","));
    int rank = a.integer("rank", 16);
    Par.setThreads(threads);
    Timers.enable(true);
    System.out.printf("bench: dim %d, layers %d, heads %d/%d kv, ffn %d, vocab %d, seq %d, batch %d, LoRA r %d on %s, %d threads%n",
        dim, c.numLayers(), heads, c.numKvHeads(), c.intermediateSize(), c.vocabSize(), seq, bsz, rank, targets, threads);
    double peak = Sgemm.peakGflops(1024, 1024, 1024, 2.0);
    System.out.printf("sgemm 1024x1024x1024: %.1f GFLOP/s%n", peak);

    LlamaWeights w = RandomLlama.create(c, 1, 0.02, 0.0, DataType.FLOAT);
    AdapterSet ad = AdapterSet.init(c, LoraConfig.of(rank, 2.0 * rank, targets), 1, DataType.FLOAT);
    LlamaModel m = new LlamaModel(w, ad, DataType.FLOAT);
    List<Param> params = ad.params();
    AdamW opt = new AdamW(params, 0.9, 0.999, 1e-8, 0.0);
    Random rng = new Random(0);
    List<int[]> ids = new ArrayList<>();
    int[] start = new int[bsz];
    for (int b = 0; b < bsz; b++) {
      int[] s = new int[seq];
      for (int i = 0; i < seq; i++) {
        s[i] = rng.nextInt(c.vocabSize());
      }
      ids.add(s);
      start[b] = Math.max(1, (int) (promptFraction * seq));
    }
    Batch batch = Batch.of(ids, start, seq, 0);
    int tgt = batch.targetCount();
    double flops = Flops.of(c, ad, bsz, seq, tgt).trainStep();
    int warm = Math.max(1, a.integer("warmup", 3));
    int steps = a.integer("steps", 5);
    double[] fwd = new double[1];
    double sftSec = measure("SFT", warm, steps, s -> {
      long t0 = System.nanoTime();
      double[] nll = m.forward(batch, true, s);
      fwd[0] += s >= warm ? (System.nanoTime() - t0) / 1e9 : 0;
      double[] wts = new double[nll.length];
      Arrays.fill(wts, 1.0 / nll.length);
      ad.zeroGrads();
      m.backward(wts);
      AdamW.clipGradNorm(params, 1.0);
      opt.step(1e-4);
      return Arrays.stream(nll).average().orElse(0);
    });
    double tokS = (double) bsz * seq / sftSec;
    double gflops = flops / sftSec / 1e9;
    System.out.printf("SFT: %.0f tokens/s, %.1f GFLOP/s achieved (%.0f%% of sgemm peak %.1f), step %.3f s, forward %.0f%%%n",
        tokS, gflops, 100 * gflops / peak, peak, sftSec, 100 * fwd[0] / steps / sftSec);
    // DPO: the same sequences as bsz/2 pairs (chosen, rejected) sharing the prompt, reference precomputed
    List<DpoTrainer.Pair> pairs = new ArrayList<>();
    for (int b = 0; b + 1 < bsz; b += 2) {
      int[] rj = ids.get(b + 1).clone();
      System.arraycopy(ids.get(b), 0, rj, 0, start[b]);
      pairs.add(new DpoTrainer.Pair(ids.get(b), start[b], rj, start[b], -seq * 10.0, -seq * 10.0));
    }
    double dpoTokS = Double.NaN;
    if (!pairs.isEmpty()) {
      DpoTrainer dpo = new DpoTrainer(m, new SftTrainer.Options(pairs.size(), 1, seq, 1e-4, 0, 1000, 0, 0, 1.0, 1),
          "sigmoid", 0.1, 0);
      double dpoSec = measure("DPO", warm, steps, s -> dpo.step(List.of(pairs)).metrics().mean("loss"));
      dpoTokS = 2.0 * pairs.size() * seq / dpoSec;
      System.out.printf("DPO (policy only, reference precomputed): %.0f tokens/s, %.1f GFLOP/s, step %.3f s "
          + "(%.2fx SFT's step time)%n", dpoTokS, flops * 2 * pairs.size() / bsz / dpoSec / 1e9, dpoSec, dpoSec / sftSec);
    }
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.put("sft_tokens_per_s", Math.round(tokS * 10) / 10.0);
    o.put("dpo_tokens_per_s", Math.round(dpoTokS * 10) / 10.0);
    o.put("achieved_gflops", Math.round(gflops * 10) / 10.0);
    o.put("sgemm_gflops", Math.round(peak * 10) / 10.0);
    o.put("utilisation", Math.round(1000 * gflops / peak) / 1000.0);
    o.put("step_seconds", sftSec);
    o.put("flops_per_step", flops);
    o.put("threads", threads);
    o.put("frozen_weight_bytes", w.frozenBytes());
    o.put("adapter_params", ad.parameterCount());
    System.out.println(o);
    return 0;
  }

  /** Runs warm + steps steps, printing each; returns the mean seconds of the measured steps. */
  static double measure(String what, int warm, int steps, java.util.function.IntToDoubleFunction step) {
    double tot = 0;
    for (int s = 0; s < warm + steps; s++) {
      long t0 = System.nanoTime();
      double loss = step.applyAsDouble(s);
      double sec = (System.nanoTime() - t0) / 1e9;
      if (s == warm - 1) {
        Timers.secondsAndReset(); // the breakdown covers the measured steps only
      }
      tot += s >= warm ? sec : 0;
      System.out.printf("%s step %d: %.3f s, loss %.4f%n", what, s, sec, loss);
    }
    Timers.secondsAndReset().forEach((k, v) -> System.out.printf("  %-18s %.3f s/step%n", k, v / steps));
    return tot / steps;
  }
}
