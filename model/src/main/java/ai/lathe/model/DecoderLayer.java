package ai.lathe.model;

import ai.lathe.model.adapter.AdapterModule;
import ai.lathe.model.nn.Attention;
import ai.lathe.model.nn.Bias;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.Heads;
import ai.lathe.model.nn.RmsNorm;
import ai.lathe.model.nn.Rope;
import ai.lathe.model.nn.SwiGlu;
import ai.lathe.model.nn.Timers;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One Llama decoder layer as a forward/backward pair on a fixed (batch, seq) shape:
 *
 * <pre>
 * xn1 = rmsnorm(x)·w1                       mid = x + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1)))
 * xn2 = rmsnorm(mid)·w2                     out = mid + down(silu(gate(xn2)) ⊙ up(xn2))
 * </pre>
 *
 * (Qwen2 adds q/k/v biases, Qwen3 RMS-normalises each head of q and k before RoPE.) Forward keeps
 * what backward needs in a {@link LayerActs}; the projections run through {@link Projections}, which
 * adds adapters and collects weight gradients. Holds only the scratch one layer needs at a time.
 */
final class DecoderLayer {
  /** How the model runs a projection: frozen weight plus adapter, and their gradients in backward. */
  interface Projections {
    /** forward: y = x·Wᵀ (+ adapter update). */
    void forward(int layer, Projection p, Buf x, Buf y, AdapterModule.Acts acts);

    /** backward of forward: dx = beta·dx + dy·W (+ adapter part); parameter gradients accumulate. */
    void backward(int layer, Projection p, Buf dy, Buf x, Buf dx, double beta, AdapterModule.Acts acts);
  }

  private final LlamaConfig c;
  private final Rope rope;
  private final Attention attn;
  private final int bsz;
  private final int seq;
  private final int n;
  // forward scratch
  private final Buf qLin; // [n, qd] (qd = heads·headDim) q after bias and norm, before RoPE
  private final Buf kLin; // [n, kvd]
  private final Buf vLin; // [n, kvd]
  private final Buf oh; // [b·h·t, hd] attention output per head
  private final INDArray ov;
  private final Buf tmpD; // [n, d] o_proj / down_proj output
  // backward scratch
  private final Buf dmid; // [n, d]
  private final Buf dh; // [n, ffn]
  private final Buf dg;
  private final Buf du;
  private final Buf datt; // [n, qd]
  private final Buf dOh; // [b·h·t, hd]
  private final Buf dQh;
  private final Buf dKh; // [b·kv·t, hd]
  private final Buf dVh;
  private final Buf dP; // [b·h·t, t]
  private final Buf dq; // [n, qd]
  private final Buf dk; // [n, kvd]
  private final Buf dv;
  private final Buf dKq; // [b·h·t, hd] each query head's dK rows, summed over its group (GQA only)
  private final Buf dVq;
  private final Buf dqRaw; // [n, qd] gradient before the per-head norm (Qwen3 only)
  private final Buf dkRaw;
  private final INDArray dOv;
  private final INDArray dQv;
  private final INDArray dKv;
  private final INDArray dVv;
  private final INDArray dPv;

  DecoderLayer(LlamaConfig c, Rope rope, Attention attn, int bsz, int seq, DataType dt) {
    this.c = c;
    this.rope = rope;
    this.attn = attn;
    this.bsz = bsz;
    this.seq = seq;
    this.n = bsz * seq;
    int d = c.hiddenSize();
    int qd = c.qDim();
    int kvd = c.kvDim();
    int hd = c.headDim();
    int f = c.intermediateSize();
    long bh = (long) bsz * c.numHeads();
    long bkv = (long) bsz * c.numKvHeads();
    qLin = Buf.zeros(dt, n, qd);
    kLin = Buf.zeros(dt, n, kvd);
    vLin = Buf.zeros(dt, n, kvd);
    oh = Buf.zeros(dt, bh * seq, hd);
    ov = attn.queries(oh.arr);
    tmpD = Buf.zeros(dt, n, d);
    dmid = Buf.zeros(dt, n, d);
    dh = Buf.zeros(dt, n, f);
    dg = Buf.zeros(dt, n, f);
    du = Buf.zeros(dt, n, f);
    datt = Buf.zeros(dt, n, qd);
    dOh = Buf.zeros(dt, bh * seq, hd);
    dQh = Buf.zeros(dt, bh * seq, hd);
    dKh = Buf.zeros(dt, bkv * seq, hd);
    dVh = Buf.zeros(dt, bkv * seq, hd);
    dP = Buf.zeros(dt, bh * seq, seq);
    dq = Buf.zeros(dt, n, qd);
    dk = Buf.zeros(dt, n, kvd);
    dv = Buf.zeros(dt, n, kvd);
    dKq = attn.groupsShareKeys() ? Buf.zeros(dt, bh * seq, hd) : null;
    dVq = attn.groupsShareKeys() ? Buf.zeros(dt, bh * seq, hd) : null;
    dqRaw = c.qkNorm() ? Buf.zeros(dt, n, qd) : null;
    dkRaw = c.qkNorm() ? Buf.zeros(dt, n, kvd) : null;
    dOv = attn.queries(dOh.arr);
    dQv = attn.queries(dQh.arr);
    dKv = attn.keys(dKh.arr);
    dVv = attn.keys(dVh.arr);
    dPv = attn.queries(dP.arr);
  }

  /** out = layer(x) at token positions pos ([n], or null: 0..t−1 per row), keeping a's activations. */
  void forward(int l, LlamaWeights.Layer lw, Projections proj, LayerActs a, Buf x, Buf out, int[] pos) {
    int d = c.hiddenSize();
    double eps = c.rmsNormEps();
    AdapterModule.Acts[] ad = a.adapters();
    RmsNorm.forward(a.xn1(), a.rstd1(), x, lw.attnNorm(), n, d, eps);
    boolean qkNorm = c.qkNorm();
    Buf qOut = qkNorm ? a.qRaw() : qLin;
    Buf kOut = qkNorm ? a.kRaw() : kLin;
    proj.forward(l, Projection.Q, a.xn1(), qOut, ad[Projection.Q.ordinal()]);
    proj.forward(l, Projection.K, a.xn1(), kOut, ad[Projection.K.ordinal()]);
    proj.forward(l, Projection.V, a.xn1(), vLin, ad[Projection.V.ordinal()]);
    // Qwen2: y = x·Wᵀ + b (+ adapter); the frozen bias adds after LoRA/DoRA as in PEFT
    Bias.add(qOut, lw.qBias(), n);
    Bias.add(kOut, lw.kBias(), n);
    Bias.add(vLin, lw.vBias(), n);
    if (qkNorm) {
      // Qwen3: every head of q and k RMS-normalised over head_dim (rows of width headDim)
      int hd = c.headDim();
      RmsNorm.forward(qLin, a.rstdQ(), qOut, lw.qNorm(), n * c.numHeads(), hd, eps);
      RmsNorm.forward(kLin, a.rstdK(), kOut, lw.kNorm(), n * c.numKvHeads(), hd, eps);
    }
    rope.toHeads(a.qh(), qLin, bsz, seq, c.numHeads(), pos);
    rope.toHeads(a.kh(), kLin, bsz, seq, c.numKvHeads(), pos);
    Heads.split(a.vh(), vLin, bsz, seq, c.numKvHeads(), c.headDim());
    long ta = Timers.start();
    attn.forward(ov, a.pv(), a.p(), a.qv(), a.kv(), a.vv(), pos);
    Timers.stop("attention", ta);
    Heads.merge(a.att(), oh, bsz, seq, c.numHeads(), c.headDim());
    proj.forward(l, Projection.O, a.att(), tmpD, ad[Projection.O.ordinal()]);
    a.mid().arr.assign(x.arr).addi(tmpD.arr);
    RmsNorm.forward(a.xn2(), a.rstd2(), a.mid(), lw.mlpNorm(), n, d, eps);
    proj.forward(l, Projection.GATE, a.xn2(), a.g(), ad[Projection.GATE.ordinal()]);
    proj.forward(l, Projection.UP, a.xn2(), a.u(), ad[Projection.UP.ordinal()]);
    SwiGlu.forward(a.h(), a.g(), a.u(), n, c.intermediateSize());
    proj.forward(l, Projection.DOWN, a.h(), tmpD, ad[Projection.DOWN.ordinal()]);
    out.arr.assign(a.mid().arr).addi(tmpD.arr);
  }

  /**
   * Backward of {@link #forward} from a's activations: dres holds d(out) on entry and d(x) on
   * return; dxn is scratch [n, d]. full (train.mode full, else null) collects the norms' gradients.
   */
  void backward(int l, LlamaWeights.Layer lw, Projections proj, LayerActs a, Buf x, Buf dres, Buf dxn, int[] pos,
      TrainableWeights full) {
    int d = c.hiddenSize();
    int f = c.intermediateSize();
    AdapterModule.Acts[] ad = a.adapters();
    // forward: out = mid + down(h), h = silu(g)·u  =>  dh = down.backward(dres), dmid = dres + ...
    proj.backward(l, Projection.DOWN, dres, a.h(), dh, 0.0, ad[Projection.DOWN.ordinal()]);
    SwiGlu.backward(dg, du, dh, a.g(), a.u(), n, f);
    proj.backward(l, Projection.GATE, dg, a.xn2(), dxn, 0.0, ad[Projection.GATE.ordinal()]);
    proj.backward(l, Projection.UP, du, a.xn2(), dxn, 1.0, ad[Projection.UP.ordinal()]);
    dmid.arr.assign(dres.arr);
    RmsNorm.backward(dmid, dxn, a.mid(), lw.mlpNorm(), a.rstd2(), n, d, true);
    if (full != null) {
      full.norm(lw.mlpNorm(), dxn, a.mid(), a.rstd2(), n, d);
    }
    // forward: mid = x + o(att)
    proj.backward(l, Projection.O, dmid, a.att(), datt, 0.0, ad[Projection.O.ordinal()]);
    Heads.split(dOh, datt, bsz, seq, c.numHeads(), c.headDim());
    long ta = Timers.start();
    attn.backward(dQv, dKv, dVv, dPv, dP, dOv, a.pv(), a.p(), a.qv(), a.kv(), a.vv(), pos,
        dKq == null ? null : dKq.arr, dVq == null ? null : dVq.arr);
    Timers.stop("attention.back", ta);
    rope.fromHeads(dq, dQh, bsz, seq, c.numHeads(), pos);
    rope.fromHeads(dk, dKh, bsz, seq, c.numKvHeads(), pos);
    Heads.merge(dv, dVh, bsz, seq, c.numKvHeads(), c.headDim());
    Buf dqIn = dq;
    Buf dkIn = dk;
    if (c.qkNorm()) {
      int hd = c.headDim();
      RmsNorm.backward(dqRaw, dq, a.qRaw(), lw.qNorm(), a.rstdQ(), n * c.numHeads(), hd, false);
      RmsNorm.backward(dkRaw, dk, a.kRaw(), lw.kNorm(), a.rstdK(), n * c.numKvHeads(), hd, false);
      if (full != null) {
        full.norm(lw.qNorm(), dq, a.qRaw(), a.rstdQ(), n * c.numHeads(), hd);
        full.norm(lw.kNorm(), dk, a.kRaw(), a.rstdK(), n * c.numKvHeads(), hd);
      }
      dqIn = dqRaw;
      dkIn = dkRaw;
    }
    proj.backward(l, Projection.Q, dqIn, a.xn1(), dxn, 0.0, ad[Projection.Q.ordinal()]);
    proj.backward(l, Projection.K, dkIn, a.xn1(), dxn, 1.0, ad[Projection.K.ordinal()]);
    proj.backward(l, Projection.V, dv, a.xn1(), dxn, 1.0, ad[Projection.V.ordinal()]);
    dres.arr.assign(dmid.arr);
    RmsNorm.backward(dres, dxn, x, lw.attnNorm(), a.rstd1(), n, d, true);
    if (full != null) {
      full.norm(lw.attnNorm(), dxn, x, a.rstd1(), n, d);
    }
  }
}
