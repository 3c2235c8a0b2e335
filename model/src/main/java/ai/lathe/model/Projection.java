package ai.lathe.model;

import java.util.List;
import java.util.function.ToIntFunction;

/**
 * The seven linear projections of a decoder layer, in checkpoint order: each carries its
 * Hugging Face module name, its block (self_attn or mlp), whether families with biases give it one
 * (Qwen2: q, k, v) and its weight's shape [out, in] as transformers stores nn.Linear weights.
 * The ordinal is the index adapters, activations and dropout seeds use.
 */
public enum Projection {
  Q("q_proj", false, true, LlamaConfig::qDim, LlamaConfig::hiddenSize), // [heads·headDim, dim]
  K("k_proj", false, true, LlamaConfig::kvDim, LlamaConfig::hiddenSize), // [kvHeads·headDim, dim]
  V("v_proj", false, true, LlamaConfig::kvDim, LlamaConfig::hiddenSize), // [kvHeads·headDim, dim]
  O("o_proj", false, false, LlamaConfig::hiddenSize, LlamaConfig::qDim), // [dim, heads·headDim]
  GATE("gate_proj", true, false, LlamaConfig::intermediateSize, LlamaConfig::hiddenSize), // [ffn, dim]
  UP("up_proj", true, false, LlamaConfig::intermediateSize, LlamaConfig::hiddenSize), // [ffn, dim]
  DOWN("down_proj", true, false, LlamaConfig::hiddenSize, LlamaConfig::intermediateSize); // [dim, ffn]

  /** All seven, in checkpoint order (values() without the copy). */
  public static final List<Projection> ALL = List.of(values());
  /** Their Hugging Face module names, in the same order. */
  public static final List<String> NAMES = ALL.stream().map(Projection::hfName).toList();

  private final String hfName;
  private final boolean mlp;
  private final boolean biased;
  private final ToIntFunction<LlamaConfig> out;
  private final ToIntFunction<LlamaConfig> in;

  Projection(String hfName, boolean mlp, boolean biased, ToIntFunction<LlamaConfig> out,
      ToIntFunction<LlamaConfig> in) {
    this.hfName = hfName;
    this.mlp = mlp;
    this.biased = biased;
    this.out = out;
    this.in = in;
  }

  /** The module name in checkpoints and PEFT's target_modules, e.g. q_proj. */
  public String hfName() {
    return hfName;
  }

  /** True for gate, up and down (the MLP block), false for q, k, v, o (self_attn). */
  public boolean inMlp() {
    return mlp;
  }

  /** True for q, k and v: the projections that carry a bias in families with biases (Qwen2). */
  public boolean biased() {
    return biased;
  }

  /** The weight's shape [out, in] under config c. */
  public int[] shape(LlamaConfig c) {
    return new int[] {out.applyAsInt(c), in.applyAsInt(c)};
  }

  /** The projection a module name denotes; an unknown name is an error naming it. */
  public static Projection of(String hfName) {
    int i = NAMES.indexOf(hfName);
    if (i < 0) {
      throw new IllegalArgumentException("unknown module " + hfName);
    }
    return ALL.get(i);
  }
}
