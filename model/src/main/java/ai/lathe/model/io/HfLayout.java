package ai.lathe.model.io;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.Projection;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The Hugging Face tensor layout of a Llama-family checkpoint, in one place: every tensor's name
 * and shape ([out, in] for projections, as transformers stores nn.Linear weights). Reading,
 * writing, merging and benchmarks all take names and shapes from here.
 */
public final class HfLayout {
  public static final String EMBED = "model.embed_tokens.weight"; // [vocab, dim]
  public static final String FINAL_NORM = "model.norm.weight"; // [dim]
  public static final String LM_HEAD = "lm_head.weight"; // [vocab, dim]; absent when tied
  /** The seven projections of a layer, in checkpoint order. */
  public static final List<String> MODULES = Projection.NAMES;
  /** The projections with a bias in families that have them (Qwen2). */
  public static final List<String> BIASED =
      Projection.ALL.stream().filter(Projection::biased).map(Projection::hfName).toList();

  private HfLayout() {}

  private static String layer(int l) {
    return "model.layers." + l + ".";
  }

  public static String attnNorm(int l) {
    return layer(l) + "input_layernorm.weight";
  }

  public static String mlpNorm(int l) {
    return layer(l) + "post_attention_layernorm.weight";
  }

  /** The module's name inside the model, e.g. model.layers.3.self_attn.q_proj (PEFT's module path). */
  public static String modulePath(int l, String module) {
    String block = MODULES.contains(module) && Projection.of(module).inMlp() ? "mlp" : "self_attn";
    return layer(l) + block + "." + module;
  }

  /** A projection's weight: model.layers.L.{self_attn|mlp}.M.weight. */
  public static String weight(int l, String module) {
    return modulePath(l, module) + ".weight";
  }

  /** A projection's bias: model.layers.L.self_attn.M.bias. */
  public static String bias(int l, String module) {
    return layer(l) + "self_attn." + module + ".bias";
  }

  /** A Qwen3 per-head norm ({@code which} q or k): model.layers.L.self_attn.{q,k}_norm.weight. */
  public static String headNorm(int l, String which) {
    return layer(l) + "self_attn." + which + "_norm.weight";
  }

  /**
   * Every tensor a checkpoint of this config holds, in writing order, with its shape: what a
   * merged or re-encoded copy of the model must carry.
   */
  public static LinkedHashMap<String, long[]> shapes(LlamaConfig c) {
    LinkedHashMap<String, long[]> shapes = new LinkedHashMap<>();
    long d = c.hiddenSize();
    shapes.put(EMBED, new long[] {c.vocabSize(), d});
    for (int l = 0; l < c.numLayers(); l++) {
      shapes.put(attnNorm(l), new long[] {d});
      shapes.put(mlpNorm(l), new long[] {d});
      for (String m : MODULES) {
        int[] s = c.moduleShape(m);
        shapes.put(weight(l, m), new long[] {s[0], s[1]});
      }
      if (c.qkvBias()) {
        for (String m : BIASED) {
          shapes.put(bias(l, m), new long[] {c.moduleShape(m)[0]});
        }
      }
      if (c.qkNorm()) {
        shapes.put(headNorm(l, "q"), new long[] {c.headDim()});
        shapes.put(headNorm(l, "k"), new long[] {c.headDim()});
      }
    }
    shapes.put(FINAL_NORM, new long[] {d});
    if (!c.tieWordEmbeddings()) {
      shapes.put(LM_HEAD, new long[] {c.vocabSize(), d});
    }
    return shapes;
  }
}
