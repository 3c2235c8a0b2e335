package ai.lathe.model.train;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterModule;
import ai.lathe.model.adapter.AdapterSet;

/** Counts the matrix-multiply FLOPs the engine executes (2 per multiply-add). */
public final class Flops {
  /** Forward FLOPs by part, for batch×seq tokens and `targets` LM-head rows. */
  public record Parts(double projections, double attention, double adapters, double head) {
    public double forward() {
      return projections + attention + adapters + head;
    }

    /**
     * A training step: frozen projections forward and input gradient (2×), adapter matmuls
     * forward, input and weight gradients (3×), attention over the full seq×seq block (3×),
     * LM head forward and input gradient (2×).
     */
    public double trainStep() {
      return 2 * projections + 3 * attention + 3 * adapters + 2 * head;
    }
  }

  private Flops() {}

  public static Parts of(LlamaConfig c, AdapterSet a, int batch, int seq, int targets) {
    double n = (double) batch * seq;
    double d = c.hiddenSize();
    double kvd = c.kvDim();
    double f = c.intermediateSize();
    double proj = c.numLayers() * 2 * n * (2 * d * d + 2 * d * kvd + 3 * d * f);
    double attn = c.numLayers() * (double) batch * c.numHeads() * 4.0 * seq * seq * c.headDim();
    double lora = 0;
    if (a != null) {
      for (int l = 0; l < c.numLayers(); l++) {
        for (String m : LlamaWeights.MODULES) {
          AdapterModule am = a.module(l, m);
          if (am != null) {
            int[] s = c.moduleShape(m);
            lora += 2 * n * am.rank() * (s[0] + s[1]);
          }
        }
      }
    }
    double head = 2.0 * targets * d * c.vocabSize();
    return new Parts(proj, attn, lora, head);
  }
}
