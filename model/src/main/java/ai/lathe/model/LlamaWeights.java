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
