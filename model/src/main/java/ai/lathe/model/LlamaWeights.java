package ai.lathe.model;

import ai.lathe.model.io.HfLayout;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.FrozenLinear;
import java.util.List;

/** The frozen weights of a Llama-family model, in the engine's dtype. */
public final class LlamaWeights {

  /**
   * One decoder layer's frozen weights. qBias/kBias/vBias (Qwen2) and qNorm/kNorm (Qwen3, [headDim])
   * are null where the family has none.
   */
  public record Layer(
      Buf attnNorm, // [dim]
      FrozenLinear q, // [nHeads*headDim, dim]
      FrozenLinear k, // [nKv*headDim, dim]
      FrozenLinear v, // [nKv*headDim, dim]
      FrozenLinear o, // [dim, nHeads*headDim]
      Buf mlpNorm, // [dim]
      FrozenLinear gate, // [ffn, dim]
      FrozenLinear up, // [ffn, dim]
      FrozenLinear down, // [dim, ffn]
      Buf qBias, // [nHeads*headDim] or null
      Buf kBias, // [nKv*headDim] or null
      Buf vBias, // [nKv*headDim] or null
      Buf qNorm, // [headDim] or null
      Buf kNorm) { // [headDim] or null

    public Layer {
      if ((qBias == null) != (kBias == null) || (qBias == null) != (vBias == null)) {
        throw new IllegalArgumentException("q/k/v biases come together");
      }
      if ((qNorm == null) != (kNorm == null)) {
        throw new IllegalArgumentException("q_norm and k_norm come together");
      }
    }

    /** A Llama-2-style layer: no biases, no q/k norms. */
    public Layer(Buf attnNorm, FrozenLinear q, FrozenLinear k, FrozenLinear v, FrozenLinear o, Buf mlpNorm,
        FrozenLinear gate, FrozenLinear up, FrozenLinear down) {
      this(attnNorm, q, k, v, o, mlpNorm, gate, up, down, null, null, null, null, null);
    }

    /** The same layer with other projections (in {@link Projection} order), biases and norms kept. */
    public Layer withModules(FrozenLinear[] m) {
      return new Layer(attnNorm, m[0], m[1], m[2], m[3], mlpNorm, m[4], m[5], m[6], qBias, kBias, vBias, qNorm,
          kNorm);
    }

    /** The frozen weight of projection p. */
    public FrozenLinear module(Projection p) {
      return switch (p) {
        case Q -> q;
        case K -> k;
        case V -> v;
        case O -> o;
        case GATE -> gate;
        case UP -> up;
        case DOWN -> down;
      };
    }

    /** The bias of projection p (q, k, v in families with biases), or null. */
    public Buf bias(Projection p) {
      return switch (p) {
        case Q -> qBias;
        case K -> kBias;
        case V -> vBias;
        default -> null;
      };
    }

    public FrozenLinear module(String name) {
      return module(Projection.of(name));
    }
  }

  public static final List<String> MODULES = HfLayout.MODULES;

  public final LlamaConfig config;
  public final Buf embed; // [vocab, dim]
  public final Layer[] layers;
  public final Buf finalNorm; // [dim]
  public final FrozenLinear lmHead; // [vocab, dim]; the embedding itself when tied

  public LlamaWeights(LlamaConfig config, Buf embed, Layer[] layers, Buf finalNorm, FrozenLinear lmHead) {
    for (int i = 0; i < layers.length; i++) {
      Layer l = layers[i];
      if ((l.qBias() != null) != config.qkvBias() || (l.qNorm() != null) != config.qkNorm()) {
        throw new IllegalArgumentException("layer " + i + ": q/k/v biases and q/k norms must match model_type "
            + config.modelType());
      }
    }
    this.config = config;
    this.embed = embed;
    this.layers = layers;
    this.finalNorm = finalNorm;
    this.lmHead = lmHead;
  }

  /** Checkpoint key of a module's weight ({@link HfLayout#weight}). */
  public static String moduleKey(int layer, String module) {
    return HfLayout.weight(layer, module);
  }


  /**
   * The same model with the seven projections of every layer in NF4 (bitsandbytes' format,
   * optionally double-quantised); embeddings, norms and the LM head stay dense, as in QLoRA.
   */
  public LlamaWeights quantizeNf4(boolean doubleQuant) {
    Layer[] q = new Layer[layers.length];
    for (int i = 0; i < layers.length; i++) {
      Layer l = layers[i];
      FrozenLinear[] m = new FrozenLinear[Projection.ALL.size()];
      for (Projection p : Projection.ALL) {
        FrozenLinear f = l.module(p);
        m[p.ordinal()] = f instanceof ai.lathe.model.nn.Nf4Linear ? f
            : ai.lathe.model.nn.Nf4Linear.quantize(f.dense(), doubleQuant, f.dense().dataType());
      }
      q[i] = l.withModules(m);
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
      for (Projection p : Projection.ALL) {
        b += l.module(p).bytes();
      }
    }
    return b;
  }

  public long frozenBytes() {
    long b = embed.arr.length() * embed.arr.dataType().width();
    for (Layer l : layers) {
      for (Projection p : Projection.ALL) {
        b += l.module(p).bytes();
      }
      b += 2L * l.attnNorm().arr.length() * l.attnNorm().arr.dataType().width();
      for (Buf x : new Buf[] {l.qBias(), l.kBias(), l.vBias(), l.qNorm(), l.kNorm()}) {
        b += x == null ? 0 : x.arr.length() * x.arr.dataType().width();
      }
    }
    if (!config.tieWordEmbeddings()) {
      b += lmHead.bytes();
    }
    return b;
  }
}
