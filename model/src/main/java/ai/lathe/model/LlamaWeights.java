package ai.lathe.model;

import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.FrozenLinear;
import java.util.List;

/** The frozen weights of a Llama-family model, in the engine's dtype. */
public final class LlamaWeights {

  /** One decoder layer's frozen weights. */
  public record Layer(
      Buf attnNorm, // [dim]
      FrozenLinear q, // [nHeads*headDim, dim]
      FrozenLinear k, // [nKv*headDim, dim]
      FrozenLinear v, // [nKv*headDim, dim]
      FrozenLinear o, // [dim, nHeads*headDim]
      Buf mlpNorm, // [dim]
      FrozenLinear gate, // [ffn, dim]
      FrozenLinear up, // [ffn, dim]
      FrozenLinear down) { // [dim, ffn]

    public FrozenLinear module(String name) {
      return switch (name) {
        case "q_proj" -> q;
        case "k_proj" -> k;
        case "v_proj" -> v;
        case "o_proj" -> o;
        case "gate_proj" -> gate;
        case "up_proj" -> up;
        case "down_proj" -> down;
        default -> throw new IllegalArgumentException("unknown module " + name);
      };
    }
  }

  public static final List<String> MODULES =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  public final LlamaConfig config;
  public final Buf embed; // [vocab, dim]
  public final Layer[] layers;
  public final Buf finalNorm; // [dim]
  public final FrozenLinear lmHead; // [vocab, dim]; the embedding itself when tied

  public LlamaWeights(LlamaConfig config, Buf embed, Layer[] layers, Buf finalNorm, FrozenLinear lmHead) {
    this.config = config;
    this.embed = embed;
    this.layers = layers;
    this.finalNorm = finalNorm;
    this.lmHead = lmHead;
  }

  /** Checkpoint key of a module's weight in a Hugging Face Llama folder. */
  public static String moduleKey(int layer, String module) {
    String block = module.endsWith("_proj") && List.of("gate_proj", "up_proj", "down_proj").contains(module)
        ? "mlp" : "self_attn";
    return "model.layers." + layer + "." + block + "." + module + ".weight";
  }

  /**
   * The same model with the seven projections of every layer in NF4 (bitsandbytes' format,
   * optionally double-quantised); embeddings, norms and the LM head stay dense, as in QLoRA.
   */
  public LlamaWeights quantizeNf4(boolean doubleQuant) {
    Layer[] q = new Layer[layers.length];
    for (int i = 0; i < layers.length; i++) {
      Layer l = layers[i];
      FrozenLinear[] m = new FrozenLinear[MODULES.size()];
      for (int k = 0; k < m.length; k++) {
        FrozenLinear f = l.module(MODULES.get(k));
        m[k] = f instanceof ai.lathe.model.nn.Nf4Linear ? f
            : ai.lathe.model.nn.Nf4Linear.quantize(f.dense(), doubleQuant, f.dense().dataType());
      }
      q[i] = new Layer(l.attnNorm(), m[0], m[1], m[2], m[3], l.mlpNorm(), m[4], m[5], m[6]);
    }
    return new LlamaWeights(config, embed, q, finalNorm, lmHead);
  }

  /** "none", or NF4 with or without double quantisation, as the configs spell it. */
  public LlamaWeights quantize(String quantize, boolean doubleQuant) {
    return switch (quantize == null ? "none" : quantize) {
      case "none", "" -> this;
      case "nf4" -> quantizeNf4(doubleQuant);
      default -> throw new IllegalArgumentException("quantize must be none or nf4, got '" + quantize + "'");
    };
  }

  /** Bytes of the seven projections' frozen weights (what NF4 shrinks). */
  public long projectionBytes() {
    long b = 0;
    for (Layer l : layers) {
      for (String m : MODULES) {
        b += l.module(m).bytes();
      }
    }
    return b;
  }

  public long frozenBytes() {
    long b = embed.arr.length() * embed.arr.dataType().width();
    for (Layer l : layers) {
      for (String m : MODULES) {
        b += l.module(m).bytes();
      }
      b += 2L * l.attnNorm().arr.length() * l.attnNorm().arr.dataType().width();
    }
    if (!config.tieWordEmbeddings()) {
      b += lmHead.bytes();
    }
    return b;
  }
}
