package ai.lathe.model.gen;

import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.Param;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Decode throughput beside its memory bound: every decode step streams all frozen projection
 * weights, the LM head, the adapters and each sequence's KV cache once, so at best
 * tokens/s = batch · bandwidth / bytes per step.
 */
public final class DecodeBench {
  private DecodeBench() {}

  /**
   * @param tokensPerSecond new tokens per second over the decode steps (prefill excluded)
   * @param boundTokensPerSecond batch · bandwidth / bytesPerStep
   * @param bytesPerStep weights + adapters + mean KV cache read per decode step
   */
  public record Result(int batch, int promptTokens, int newTokens, double tokensPerSecond,
      double boundTokensPerSecond, double bandwidthBytesPerSecond, long bytesPerStep) {
    public double fractionOfBound() {
      return tokensPerSecond / boundTokensPerSecond;
    }
  }

  /** Measures bandwidth and decode (batch prompts of 64 tokens, 32 new each), prints both and adds them to o. */
  public static Result report(LlamaModel m, int batch, com.fasterxml.jackson.databind.node.ObjectNode o) {
    double bw = MemoryBandwidth.readBytesPerSecond(512, 3);
    int prompt = Math.min(64, m.config().maxPositionEmbeddings() - 32);
    Result r = run(m, batch, prompt, 32, bw);
    System.out.printf("decode (batch %d, prompt %d, %d new, KV cache): %.1f tokens/s; memory bound %.1f tokens/s "
        + "(%.1f MiB read per step at %.1f GB/s measured) = %.0f%% of the bound%n", batch, prompt, 32,
        r.tokensPerSecond(), r.boundTokensPerSecond(), r.bytesPerStep() / 1048576.0, bw / 1e9,
        100 * r.fractionOfBound());
    o.put("decode_tokens_per_s", Math.round(r.tokensPerSecond() * 10) / 10.0)
        .put("decode_bound_tokens_per_s", Math.round(r.boundTokensPerSecond() * 10) / 10.0)
        .put("decode_bytes_per_step", r.bytesPerStep())
        .put("memory_bandwidth_gbs", Math.round(bw / 1e8) / 10.0);
    return r;
  }

  public static Result run(LlamaModel m, int batch, int promptTokens, int newTokens, double bandwidth) {
    Random rng = new Random(0);
    List<int[]> prompts = new ArrayList<>();
    for (int b = 0; b < batch; b++) {
      int[] p = new int[promptTokens];
      for (int i = 0; i < p.length; i++) {
        p[i] = rng.nextInt(m.config().vocabSize());
      }
      prompts.add(p);
    }
    Generator g = new Generator(m);
    Sampling s = Sampling.greedy(newTokens, new int[0]);
    g.generate(prompts, Sampling.greedy(2, new int[0]), 0); // warm-up
    long t0 = System.nanoTime();
    g.generate(prompts, Sampling.greedy(1, new int[0]), 0);
    double prefill = (System.nanoTime() - t0) / 1e9;
    t0 = System.nanoTime();
    g.generate(prompts, s, 0);
    double decode = Math.max(1e-9, (System.nanoTime() - t0) / 1e9 - prefill);
    double tps = (double) batch * (newTokens - 1) / decode;
    long bytes = bytesPerStep(m, batch, promptTokens + newTokens / 2);
    return new Result(batch, promptTokens, newTokens, tps, batch * bandwidth / bytes, bandwidth, bytes);
  }

  /** Bytes one decode step must read: projections, LM head, adapters, and batch KV caches of length len. */
  static long bytesPerStep(LlamaModel m, int batch, int len) {
    LlamaWeights w = m.weights();
    long b = w.projectionBytes() + w.lmHead.bytes();
    if (m.adapters() != null && m.adaptersEnabled()) {
      for (Param p : m.adapters().params()) {
        b += p.value().length() * p.value().dataType().width();
      }
    }
    int width = m.dtype().equals(org.nd4j.linalg.api.buffer.DataType.DOUBLE) ? 8 : 4;
    b += 2L * batch * m.config().numLayers() * m.config().kvDim() * len * width;
    return b;
  }
}
