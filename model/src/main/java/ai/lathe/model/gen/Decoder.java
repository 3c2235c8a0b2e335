package ai.lathe.model.gen;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.Projection;
import ai.lathe.model.adapter.AdapterModule;
import ai.lathe.model.nn.Bias;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.Par;
import ai.lathe.model.nn.RmsNorm;
import ai.lathe.model.nn.Rope;
import ai.lathe.model.nn.SwiGlu;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The Llama forward pass over a ragged set of new tokens, each at its own position of its own
 * sequence, reading earlier positions from the sequences' KV caches. Prefill sends a prompt's
 * tokens as many rows, decoding one row per sequence; both are the same computation as
 * {@link LlamaModel#forward} on the whole prefix, row for row (same kernels, same adapter code).
 */
final class Decoder {
  private final LlamaModel model;
  private final LlamaConfig c;
  private final LlamaWeights w;
  private final DataType dt;
  private final Rope rope;
  private final boolean adapters;
  private final ai.lathe.model.adapter.AdapterSet adapterSet;
  private final Map<Integer, Rows> rows = new LinkedHashMap<>(8, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Integer, Rows> e) {
      return size() > 4;
    }
  };

  /** [m, d] gathered hidden states and [m, vocab] logits per head-row count m, reused across steps. */
  private final Map<Integer, Buf[]> heads = new LinkedHashMap<>(8, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Integer, Buf[]> e) {
      return size() > 4;
    }
  };

  Decoder(LlamaModel model) {
    this.model = model;
    this.c = model.config();
    this.w = model.weights();
    this.dt = model.dtype();
    this.rope = new Rope(c.headDim(), c.ropeTheta(), Math.max(c.maxPositionEmbeddings(), 1), c.ropeScaling());
    this.adapters = model.adapters() != null && model.adaptersEnabled();
    this.adapterSet = model.adapters();
  }

  /** Whether this decoder still computes what model does (same weights, adapters and their switch). */
  boolean matches(LlamaModel m) {
    return m == model && m.adapters() == adapterSet && adapters == (m.adapters() != null && m.adaptersEnabled());
  }

  int vocab() {
    return c.vocabSize();
  }

  int maxPositions() {
    return rope.maxPos();
  }

  /** Buffers for n rows (reused across steps of the same size). */
  private final class Rows {
    final int n;
    final Buf x; // [n, d] residual stream
    final Buf xn; // [n, d] normed input of a block
    final Buf rstd; // [n·heads] scratch for every norm
    final Buf qLin; // [n, qd] q_proj output (before the Qwen3 norm)
    final Buf kLin; // [n, kvd]
    final Buf vLin; // [n, kvd]
    final Buf q; // [n, qd] normed (Qwen3) and rotated queries
    final Buf k; // [n, kvd]
    final Buf kNormed; // [n, kvd] Qwen3 only
    final Buf qNormed; // [n, qd] Qwen3 only
    final Buf att; // [n, qd] merged heads (o_proj input)
    final Buf tmp; // [n, d]
    final Buf g; // [n, ffn]
    final Buf u; // [n, ffn]
    final Buf h; // [n, ffn]
    final AdapterModule.Acts[][] acts; // [layer][module]

    Rows(int n) {
      this.n = n;
      int d = c.hiddenSize();
      int f = c.intermediateSize();
      x = z(n, d);
      xn = z(n, d);
      rstd = z((long) n * Math.max(c.numHeads(), 1));
      qLin = z(n, c.qDim());
      kLin = z(n, c.kvDim());
      vLin = z(n, c.kvDim());
      q = z(n, c.qDim());
      k = z(n, c.kvDim());
      qNormed = c.qkNorm() ? z(n, c.qDim()) : null;
      kNormed = c.qkNorm() ? z(n, c.kvDim()) : null;
      att = z(n, c.qDim());
      tmp = z(n, d);
      g = z(n, f);
      u = z(n, f);
      h = z(n, f);
      acts = new AdapterModule.Acts[c.numLayers()][Projection.ALL.size()];
      if (adapters) {
        for (int l = 0; l < c.numLayers(); l++) {
          for (Projection p : Projection.ALL) {
            AdapterModule am = model.adapters().module(l, p);
            if (am != null) {
              acts[l][p.ordinal()] = am.newActs(n, dt);
            }
          }
        }
      }
    }
  }

  private Buf z(long... shape) {
    return Buf.zeros(dt, shape);
  }

  /**
   * Runs token tok[r] at position pos[r] of sequence cache[r] for every row r (rows of one sequence
   * in increasing position), stores their keys and values, and returns the final normed hidden
   * states of rows headRows as a [headRows.length, d] buffer (null when there are none).
   */
  Buf hidden(int[] tok, int[] pos, KvCache[] cache, int[] headRows) {
    int n = tok.length;
    Rows s = rows.computeIfAbsent(n, Rows::new);
    int d = c.hiddenSize();
    int vocab = c.vocabSize();
    for (int r = 0; r < n; r++) {
      if (tok[r] < 0 || tok[r] >= vocab) {
        throw new IllegalArgumentException("token id " + tok[r] + " outside vocabulary of " + vocab);
      }
      if (pos[r] >= rope.maxPos()) {
        throw new IllegalArgumentException("position " + pos[r] + " exceeds max_position_embeddings " + rope.maxPos());
      }
    }
    Par.rows(n, (lo, hi) -> {
      for (int r = lo; r < hi; r++) {
        int src = tok[r] * d;
        for (int j = 0; j < d; j++) {
          s.x.set(r * d + j, w.embed.get(src + j));
        }
      }
    });
    double eps = c.rmsNormEps();
    int hd = c.headDim();
    for (int l = 0; l < c.numLayers(); l++) {
      LlamaWeights.Layer lw = w.layers[l];
      RmsNorm.forward(s.xn, s.rstd, s.x, lw.attnNorm(), n, d, eps);
      proj(s, l, lw, Projection.Q, s.xn, s.qLin);
      proj(s, l, lw, Projection.K, s.xn, s.kLin);
      proj(s, l, lw, Projection.V, s.xn, s.vLin);
      // Qwen2: the frozen bias adds after the adapter, as in PEFT
      Bias.add(s.qLin, lw.qBias(), n);
      Bias.add(s.kLin, lw.kBias(), n);
      Bias.add(s.vLin, lw.vBias(), n);
      Buf qIn = s.qLin;
      Buf kIn = s.kLin;
      if (c.qkNorm()) {
        // Qwen3: every head of q and k RMS-normalised over head_dim before RoPE
        RmsNorm.forward(s.qNormed, s.rstd, s.qLin, lw.qNorm(), n * c.numHeads(), hd, eps);
        RmsNorm.forward(s.kNormed, s.rstd, s.kLin, lw.kNorm(), n * c.numKvHeads(), hd, eps);
        qIn = s.qNormed;
        kIn = s.kNormed;
      }
      // with seq = 1 the per-head layout [n, heads, 1, hd] is the row layout: rotate each row at its position
      rope.toHeads(s.q, qIn, n, 1, c.numHeads(), pos);
      rope.toHeads(s.k, kIn, n, 1, c.numKvHeads(), pos);
      for (int r = 0; r < n; r++) {
        cache[r].put(l, s.k, s.vLin, r, pos[r]);
      }
      CachedAttention.forward(s.att, s.q, cache, l, pos, n, c.numHeads(), c.numKvHeads(), hd, c.slidingWindow());
      proj(s, l, lw, Projection.O, s.att, s.tmp);
      s.x.arr.addi(s.tmp.arr);
      RmsNorm.forward(s.xn, s.rstd, s.x, lw.mlpNorm(), n, d, eps);
      proj(s, l, lw, Projection.GATE, s.xn, s.g);
      proj(s, l, lw, Projection.UP, s.xn, s.u);
      SwiGlu.forward(s.h, s.g, s.u, n, c.intermediateSize());
      proj(s, l, lw, Projection.DOWN, s.h, s.tmp);
      s.x.arr.addi(s.tmp.arr);
    }
    if (headRows.length == 0) {
      return null;
    }
    RmsNorm.forward(s.xn, s.rstd, s.x, w.finalNorm, n, d, eps);
    Buf out = headBuffers(headRows.length)[0];
    for (int m = 0; m < headRows.length; m++) {
      int src = headRows[m] * d;
      for (int j = 0; j < d; j++) {
        out.set(m * d + j, s.xn.get(src + j));
      }
    }
    return out;
  }

  private Buf[] headBuffers(int m) {
    return heads.computeIfAbsent(m, k -> new Buf[] {z(k, c.hiddenSize()), z(k, c.vocabSize())});
  }

  /** Full-vocabulary logits [rows, vocab] of normed hidden states [rows, d] (valid until the next call). */
  Buf logits(Buf hidden) {
    Buf z = headBuffers((int) hidden.arr.size(0))[1];
    w.lmHead.forward(hidden.arr, z.arr);
    return z;
  }

  private void proj(Rows s, int layer, LlamaWeights.Layer lw, Projection p, Buf x, Buf y) {
    FrozenLinear base = lw.module(p);
    AdapterModule am = adapters ? model.adapters().module(layer, p) : null;
    if (am == null) {
      base.forward(x.arr, y.arr);
    } else {
      am.forward(base, x.arr, y.arr, s.acts[layer][p.ordinal()], false, 0L);
    }
  }
}
