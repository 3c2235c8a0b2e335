package ai.lathe.model;

import ai.lathe.model.adapter.AdapterModule;
import ai.lathe.model.nn.Attention;
import ai.lathe.model.nn.Buf;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What one decoder layer's forward keeps for its backward (llm.c's per-layer activations), for a
 * batch of b sequences of t tokens (n = b·t rows). The Qwen3 fields (qRaw, kRaw, rstdQ, rstdK) are
 * null in families without per-head q/k norms; adapters[p.ordinal()] is null where projection p
 * has no adapter. With activation checkpointing every layer shares one set of buffers (each its
 * own adapter activations), refilled by recomputing the layer before its backward.
 */
record LayerActs(
    Buf xn1, // [n, d] normed attention input
    Buf rstd1, // [n]
    Buf qRaw, // [n, qd] q_proj output before the per-head norm (Qwen3 only)
    Buf kRaw, // [n, kvd]
    Buf rstdQ, // [n·heads] per-head rstd of q (Qwen3 only)
    Buf rstdK, // [n·kvHeads]
    Buf qh, // [b·heads·t, headDim] rotated queries
    Buf kh, // [b·kvHeads·t, headDim] rotated keys
    Buf vh, // [b·kvHeads·t, headDim]
    Buf p, // [b·heads·t, t] attention probabilities
    Buf att, // [n, qd] merged heads (o_proj input)
    Buf mid, // [n, d] residual after attention
    Buf xn2, // [n, d] normed MLP input
    Buf rstd2, // [n]
    Buf g, // [n, ffn] gate pre-activation
    Buf u, // [n, ffn] up projection
    Buf h, // [n, ffn] silu(g)·u
    INDArray qv, // attention's views of qh, kh, vh and p (Attention.queries / keys)
    INDArray kv,
    INDArray vv,
    INDArray pv,
    AdapterModule.Acts[] adapters) { // [7] by Projection ordinal

  LayerActs {
    if ((qRaw == null) != (kRaw == null) || (qRaw == null) != (rstdQ == null) || (qRaw == null) != (rstdK == null)) {
      throw new IllegalArgumentException("the per-head norm activations (qRaw, kRaw, rstdQ, rstdK) come together");
    }
    if (adapters.length != Projection.ALL.size()) {
      throw new IllegalArgumentException("one adapter activation slot per projection, got " + adapters.length);
    }
  }

  /** Fresh zeroed buffers for one layer of config c on attn's (batch, seq) shape, with these adapter activations. */
  static LayerActs allocate(LlamaConfig c, Attention attn, int bsz, int seq, DataType dt,
      AdapterModule.Acts[] adapters) {
    int n = bsz * seq;
    int d = c.hiddenSize();
    int f = c.intermediateSize();
    int hd = c.headDim();
    long bh = (long) bsz * c.numHeads();
    long bkv = (long) bsz * c.numKvHeads();
    boolean qk = c.qkNorm();
    Buf qh = Buf.zeros(dt, bh * seq, hd);
    Buf kh = Buf.zeros(dt, bkv * seq, hd);
    Buf vh = Buf.zeros(dt, bkv * seq, hd);
    Buf p = Buf.zeros(dt, bh * seq, seq);
    return new LayerActs(Buf.zeros(dt, n, d), Buf.zeros(dt, n),
        qk ? Buf.zeros(dt, n, c.qDim()) : null, qk ? Buf.zeros(dt, n, c.kvDim()) : null,
        qk ? Buf.zeros(dt, (long) n * c.numHeads()) : null, qk ? Buf.zeros(dt, (long) n * c.numKvHeads()) : null,
        qh, kh, vh, p, Buf.zeros(dt, n, c.qDim()), Buf.zeros(dt, n, d), Buf.zeros(dt, n, d), Buf.zeros(dt, n),
        Buf.zeros(dt, n, f), Buf.zeros(dt, n, f), Buf.zeros(dt, n, f),
        attn.queries(qh.arr), attn.keys(kh.arr), attn.keys(vh.arr), attn.queries(p.arr), adapters);
  }

  /** The same buffers with other adapter activations (checkpointing: one set of buffers, per-layer adapters). */
  LayerActs withAdapters(AdapterModule.Acts[] a) {
    return new LayerActs(xn1, rstd1, qRaw, kRaw, rstdQ, rstdK, qh, kh, vh, p, att, mid, xn2, rstd2, g, u, h, qv, kv,
        vv, pv, a);
  }
}
