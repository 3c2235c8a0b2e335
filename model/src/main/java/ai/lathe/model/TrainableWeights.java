package ai.lathe.model;

import ai.lathe.model.adapter.Param;
import ai.lathe.model.io.HfLayout;
import ai.lathe.model.nn.Bias;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.DenseLinear;
import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.WeightGrads;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Full-parameter training (train.mode: full): every weight of a model, except those a freeze
 * pattern names, is a {@link Param} whose value IS the model's own array (AdamW updates the
 * weights the forward pass reads) under its Hugging Face tensor name. LlamaModel's backward calls
 * the gradient functions below at the points where each weight's output gradient and input are
 * at hand; a weight without a Param (frozen) is skipped. A tied head is the embedding, so its
 * gradient lands in embed_tokens' accumulator.
 */
public final class TrainableWeights {
  private final LlamaWeights w;
  private final List<Param> params = new ArrayList<>();
  private final Map<INDArray, INDArray> grads = new IdentityHashMap<>(); // weight array → its gradient

  private TrainableWeights(LlamaWeights w) {
    this.w = w;
  }

  /**
   * Every weight of w trainable except those whose Hugging Face name a freeze pattern finds
   * (a regular expression searched in the name, so a plain substring such as embed_tokens works).
   * A pattern that matches no tensor is an error; so are quantised (NF4) or otherwise non-dense weights.
   */
  public static TrainableWeights of(LlamaWeights w, List<String> freeze) {
    Map<String, INDArray> named = named(w);
    List<Pattern> pats = new ArrayList<>();
    for (String f : freeze) {
      Pattern p;
      try {
        p = Pattern.compile(f);
      } catch (java.util.regex.PatternSyntaxException e) {
        throw new IllegalArgumentException("train.freeze: '" + f + "' is not a valid pattern: " + e.getDescription());
      }
      if (named.keySet().stream().noneMatch(k -> p.matcher(k).find())) {
        throw new IllegalArgumentException("train.freeze: '" + f + "' matches no tensor of the model (names are "
            + "Hugging Face's, e.g. model.embed_tokens.weight, model.layers.0.self_attn.q_proj.weight, lm_head.weight)");
      }
      pats.add(p);
    }
    TrainableWeights t = new TrainableWeights(w);
    for (var e : named.entrySet()) {
      if (pats.stream().anyMatch(p -> p.matcher(e.getKey()).find())) {
        continue;
      }
      INDArray v = e.getValue();
      INDArray g = Nd4j.zeros(v.dataType(), v.shape());
      t.params.add(new Param(e.getKey(), v, g));
      t.grads.put(v, g);
    }
    if (t.params.isEmpty()) {
      throw new IllegalArgumentException("train.freeze " + freeze + " freezes every tensor: nothing to train");
    }
    return t;
  }

  /** The model's tensors under Hugging Face names (lm_head only when untied), each checked dense. */
  public static Map<String, INDArray> named(LlamaWeights w) {
    Map<String, INDArray> t = new LinkedHashMap<>();
    t.put(HfLayout.EMBED, w.embed.arr);
    for (int i = 0; i < w.layers.length; i++) {
      LlamaWeights.Layer l = w.layers[i];
      t.put(HfLayout.attnNorm(i), l.attnNorm().arr);
      t.put(HfLayout.mlpNorm(i), l.mlpNorm().arr);
      for (Projection p : Projection.ALL) {
        String key = HfLayout.weight(i, p.hfName());
        t.put(key, dense(l.module(p), key));
      }
      if (l.qBias() != null) {
        for (Projection p : Projection.ALL) {
          if (p.biased()) {
            t.put(HfLayout.bias(i, p.hfName()), l.bias(p).arr);
          }
        }
      }
      if (l.qNorm() != null) {
        t.put(HfLayout.headNorm(i, "q"), l.qNorm().arr);
        t.put(HfLayout.headNorm(i, "k"), l.kNorm().arr);
      }
    }
    t.put(HfLayout.FINAL_NORM, w.finalNorm.arr);
    if (!w.config.tieWordEmbeddings()) {
      t.put(HfLayout.LM_HEAD, dense(w.lmHead, HfLayout.LM_HEAD));
    }
    return t;
  }

  /**
   * A private deep copy as dense trainable weights (a tied head stays tied to the copy's
   * embedding): what a task trains in full mode, so the executor's shared, cached base is never
   * modified. Weights held in 16 bits (a BF16/F16 checkpoint loaded as F32) are widened to F32
   * master weights; NF4 weights are an error.
   */
  public static LlamaWeights copyOf(LlamaWeights w) {
    LlamaWeights.Layer[] layers = new LlamaWeights.Layer[w.layers.length];
    for (int i = 0; i < layers.length; i++) {
      LlamaWeights.Layer l = w.layers[i];
      FrozenLinear[] m = new FrozenLinear[Projection.ALL.size()];
      for (Projection p : Projection.ALL) {
        m[p.ordinal()] = new DenseLinear(denseCopy(l.module(p), HfLayout.weight(i, p.hfName())));
      }
      layers[i] = new LlamaWeights.Layer(dup(l.attnNorm()), m[0], m[1], m[2], m[3], dup(l.mlpNorm()), m[4], m[5], m[6],
          dup(l.qBias()), dup(l.kBias()), dup(l.vBias()), dup(l.qNorm()), dup(l.kNorm()));
    }
    Buf embed = dup(w.embed);
    FrozenLinear head = w.config.tieWordEmbeddings() ? new DenseLinear(embed.arr)
        : new DenseLinear(denseCopy(w.lmHead, "lm_head.weight"));
    return new LlamaWeights(w.config, embed, layers, dup(w.finalNorm), head);
  }

  /** A copy of b (16-bit storage widened to F32). */
  private static Buf dup(Buf b) {
    return b == null ? null : Buf.of(b instanceof Buf.Half ? b.arr.castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT)
        : b.arr.dup('c'));
  }

  /** A dense copy of a projection: HalfLinear widens to a fresh F32 array, NF4 is refused. */
  private static INDArray denseCopy(FrozenLinear f, String name) {
    return f instanceof ai.lathe.model.nn.HalfLinear h ? h.dense() : dense(f, name).dup('c');
  }

  private static INDArray dense(FrozenLinear f, String name) {
    if (f instanceof ai.lathe.model.nn.HalfLinear) {
      throw new IllegalArgumentException("train.mode full: " + name + " is held in 16 bits (a BF16/F16 checkpoint): "
          + "it cannot be trained in full in place - train a dense copy (TrainableWeights.copyOf, as the sft, dpo and "
          + "kto jobs do) or convert the checkpoint to F32");
    }
    if (!(f instanceof DenseLinear)) {
      throw new IllegalArgumentException("train.mode full: " + name + " is held as " + f.getClass().getSimpleName()
          + " (quantize: nf4?); a 4-bit base cannot be trained in full - use train.mode lora (QLoRA) or quantize: none");
    }
    return f.dense();
  }

  public List<Param> params() {
    return params;
  }

  public long parameterCount() {
    long n = 0;
    for (Param p : params) {
      n += p.value().length();
    }
    return n;
  }

  public LlamaWeights weights() {
    return w;
  }

  /** The gradient accumulator of a weight array, or null when it is frozen. */
  private INDArray grad(INDArray weight) {
    return weight == null ? null : grads.get(weight);
  }

  /** forward: y = x·Wᵀ  =>  dW += dyᵀ·x (dy [n, out], x [n, in]). */
  public void linear(FrozenLinear base, INDArray dy, INDArray x) {
    INDArray g = grad(base.dense());
    if (g != null) {
      Nd4j.gemm(dy, x, g, true, false, 1.0, 1.0);
    }
  }

  /** forward: y = x·Wᵀ + b  =>  db += Σ_rows dy (no-op for a null or frozen bias). */
  public void bias(Buf b, Buf dy, int rows) {
    INDArray g = b == null ? null : grad(b.arr);
    if (g != null) {
      Bias.gradient(g, dy, rows);
    }
  }

  /** forward: y_i = w_i·x_i·rstd (RMSNorm over rows of width d)  =>  dw_i += Σ_rows dy_i·x_i·rstd. */
  public void norm(Buf weight, Buf dy, Buf x, Buf rstd, int rows, int d) {
    INDArray g = grad(weight.arr);
    if (g != null) {
      WeightGrads.norm(g, dy, x, rstd, rows, d);
    }
  }

  /**
   * The LM head's weight gradient for one block of rows: forward logits = xG·Wᵀ  =>
   * dW += dlogitsᵀ·xG (dlogits [m, vocab], xG [m, d]); a chunked loss calls it per chunk. Tied, W is
   * embed_tokens and the gradient adds to the embedding's.
   */
  public void head(INDArray dlogits, INDArray xG) {
    linear(w.lmHead, dlogits, xG);
  }

  /** forward: x0[i] = E[tok[i]]  =>  dE[tok[i]] += dx0[i] (a scatter-add; repeated tokens sum). */
  public void embedding(int[] tokens, INDArray dx0) {
    INDArray g = grad(w.embed.arr);
    if (g != null) {
      WeightGrads.embedding(g, tokens, dx0, w.config.hiddenSize());
    }
  }

  public void zeroGrads() {
    for (Param p : params) {
      p.grad().assign(0);
    }
  }
}
