package ai.lathe.model;

import ai.lathe.model.adapter.AdapterModule;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.nn.Attention;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.LmHeadLoss;
import ai.lathe.model.nn.Par;
import ai.lathe.model.nn.RmsNorm;
import ai.lathe.model.nn.Rope;
import ai.lathe.model.nn.RowCopy;
import ai.lathe.model.nn.SwiGlu;
import ai.lathe.model.nn.Timers;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The Llama forward and backward pass, by hand. Backward computes gradients for the adapter
 * parameters (and the activations' gradients needed to reach them), or with
 * {@link #setTrainable} (train.mode full) for the weights themselves via TrainableWeights. The
 * loss is a weighted sum of per-target negative log-likelihoods, so SFT (weights 1/count) and
 * sequence-level objectives (weights from the loss's derivative per sequence) share it.
 */
public final class LlamaModel {
  private final LlamaWeights w;
  private final LlamaConfig c;
  private AdapterSet adapters;
  private TrainableWeights full; // train.mode full: every weight's gradient (null: adapters only)
  private boolean adaptersEnabled = true;
  private final DataType dt;
  private final Rope rope;
  /**
   * Activation buffers per (batch, length), least recently used dropped beyond a few: preference
   * batches are padded to their longest sequence, so shapes vary from step to step.
   */
  private final Map<Long, Workspace> workspaces = new java.util.LinkedHashMap<>(8, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Long, Workspace> eldest) {
      return size() > MAX_WORKSPACES;
    }
  };
  static final int MAX_WORKSPACES = 4;
  private Workspace last;
  /** Keep only each layer's input in forward and recompute the layer in backward. */
  private boolean checkpointing;
  private int headChunkRows;
  private LmHeadLoss.HeadGradient headGradient;

  public LlamaModel(LlamaWeights w, AdapterSet adapters, DataType dt) {
    this.w = w;
    this.c = w.config;
    this.adapters = adapters;
    if (adapters != null) {
      adapters.bindBase(w);
    }
    this.dt = dt;
    this.rope = new Rope(c.headDim(), c.ropeTheta(), Math.max(c.maxPositionEmbeddings(), 1), c.ropeScaling());
  }

  public LlamaConfig config() {
    return c;
  }

  public LlamaWeights weights() {
    return w;
  }

  public AdapterSet adapters() {
    return adapters;
  }

  public DataType dtype() {
    return dt;
  }

  /** Trains the weights themselves (train.mode full) instead of adapters; null turns it off. */
  public void setTrainable(TrainableWeights t) {
    if (t != null && t.weights() != w) {
      throw new IllegalArgumentException("trainable weights belong to another model");
    }
    this.full = t;
  }

  public TrainableWeights trainable() {
    return full;
  }

  /** Run as the frozen base (reference model) while false. */
  public void setAdaptersEnabled(boolean on) {
    this.adaptersEnabled = on;
  }

  public boolean adaptersEnabled() {
    return adaptersEnabled;
  }

  /** Replaces the adapters (activations are rebuilt lazily). */
  public void setAdapters(AdapterSet a) {
    this.adapters = a;
    if (a != null) {
      a.bindBase(w);
    }
    workspaces.clear();
    last = null;
  }

  /**
   * Activation checkpointing (train.gradient_checkpointing): forward keeps each layer's input only
   * (one set of layer buffers is shared by all layers), backward recomputes each layer from its
   * input first. Same arithmetic in the same order, so the gradients are identical.
   */
  public void setGradientCheckpointing(boolean on) {
    if (on != checkpointing) {
      checkpointing = on;
      releaseWorkspaces();
    }
  }

  public boolean gradientCheckpointing() {
    return checkpointing;
  }

  /** Rows of LM-head logits held at once (0: {@link LmHeadLoss#defaultChunkRows}). */
  public void setHeadChunkRows(int rows) {
    if (rows < 0) {
      throw new IllegalArgumentException("head chunk rows must be >= 0, got " + rows);
    }
    headChunkRows = rows;
    releaseWorkspaces();
  }

  /** Receives each head chunk's logit gradient and inputs in backward (a trainable head); null: frozen head. */
  public void setHeadGradient(LmHeadLoss.HeadGradient g) {
    headGradient = g;
  }

  // ------------------------------------------------------------------ workspace

  /** Preallocated activations and gradients for one (batch, seq) shape. */
  final class Workspace {
    final int bsz;
    final int seq;
    final int n;
    final Attention attn;
    final Buf[] xs; // [L+1][n, d] residual stream entering each layer (xs[L] leaves the last)
    final Buf[] xn1; // [n, d] normed attention input
    final Buf[] rstd1; // [n]
    final Buf[] qh; // [b·h·t, hd] rotated queries
    final Buf[] kh; // [b·kv·t, hd] rotated keys
    final Buf[] vh; // [b·kv·t, hd]
    final Buf[] p; // [b·h·t, t] attention probabilities
    final Buf[] att; // [n, d] merged heads (o_proj input)
    final Buf[] mid; // [n, d] residual after attention
    final Buf[] xn2; // [n, d]
    final Buf[] rstd2; // [n]
    final Buf[] g; // [n, ffn] gate pre-activation
    final Buf[] u; // [n, ffn] up projection
    final Buf[] h; // [n, ffn] silu(g)·u
    final Buf[] qRaw; // [n, qd] q_proj output before the per-head norm (Qwen3 only)
    final Buf[] kRaw; // [n, kvd]
    final Buf[] rstdQ; // [n·h] per-head rstd of q (Qwen3 only)
    final Buf[] rstdK; // [n·kv]
    final INDArray[] qv; // attention views of qh, kh, vh, p (see Attention.queries/keys)
    final INDArray[] kv;
    final INDArray[] vv;
    final INDArray[] pv;
    final Buf qLin; // [n, qd] (qd = heads·headDim)
    final Buf kLin; // [n, kvd]
    final Buf vLin; // [n, kvd]
    final Buf oh; // [b·h·t, hd]
    final INDArray ov;
    final Buf tmpD; // [n, d]
    final Buf xnF; // [n, d]
    final Buf rstdF; // [n]
    final Buf xnG; // [n, d] rows with a target, gathered
    final LmHeadLoss head; // chunked LM head + NLL (holds one chunk of logits)
    final boolean checkpointed; // per-layer buffers below are one shared set (only xs is per layer)
    // backward scratch
    final Buf dres;
    final Buf dmid;
    final Buf dxn;
    final Buf dh;
    final Buf dg;
    final Buf du;
    final Buf datt;
    final Buf dOh;
    final Buf dQh;
    final Buf dKh;
    final Buf dVh;
    final Buf dP;
    final Buf dq;
    final Buf dk;
    final Buf dv;
    final Buf dqRaw; // [n, qd] gradient before the per-head norm (Qwen3 only)
    final Buf dkRaw;
    final Buf dxnG;
    final INDArray dOv;
    final INDArray dQv;
    final INDArray dKv;
    final INDArray dVv;
    final INDArray dPv;
    final AdapterModule.Acts[][] acts;
    int[] targetRows = new int[0];
    int[] targetIds = new int[0]; // [m] target of each head row
    int m;
    long seed;
    Batch batch;
    boolean training;

    Workspace(int bsz, int seq, boolean checkpointed) {
      this.checkpointed = checkpointed;
      this.bsz = bsz;
      this.seq = seq;
      this.n = bsz * seq;
      int d = c.hiddenSize();
      int kvd = c.kvDim();
      int qd = c.qDim();
      int hd = c.headDim();
      boolean qkNorm = c.qkNorm();
      int f = c.intermediateSize();
      int nl = c.numLayers();
      int bh = bsz * c.numHeads();
      int bkv = bsz * c.numKvHeads();
      attn = new Attention(bsz, seq, c.numHeads(), c.numKvHeads(), hd, c.slidingWindow());
      xs = new Buf[nl + 1];
      xn1 = new Buf[nl];
      rstd1 = new Buf[nl];
      qh = new Buf[nl];
      kh = new Buf[nl];
      vh = new Buf[nl];
      p = new Buf[nl];
      att = new Buf[nl];
      mid = new Buf[nl];
      xn2 = new Buf[nl];
      rstd2 = new Buf[nl];
      g = new Buf[nl];
      u = new Buf[nl];
      h = new Buf[nl];
      qRaw = new Buf[nl];
      kRaw = new Buf[nl];
      rstdQ = new Buf[nl];
      rstdK = new Buf[nl];
      qv = new INDArray[nl];
      kv = new INDArray[nl];
      vv = new INDArray[nl];
      pv = new INDArray[nl];
      acts = new AdapterModule.Acts[nl][LlamaWeights.MODULES.size()];
      for (int l = 0; l <= nl; l++) {
        xs[l] = z(n, d);
      }
      for (int l = 0; l < nl; l++) {
        xn1[l] = checkpointed && l > 0 ? xn1[0] : z(n, d);
        rstd1[l] = checkpointed && l > 0 ? rstd1[0] : z(n);
        qh[l] = checkpointed && l > 0 ? qh[0] : z((long) bh * seq, hd);
        kh[l] = checkpointed && l > 0 ? kh[0] : z((long) bkv * seq, hd);
        vh[l] = checkpointed && l > 0 ? vh[0] : z((long) bkv * seq, hd);
        p[l] = checkpointed && l > 0 ? p[0] : z((long) bh * seq, seq);
        att[l] = checkpointed && l > 0 ? att[0] : z(n, qd);
        if (qkNorm) {
          qRaw[l] = checkpointed && l > 0 ? qRaw[0] : z(n, qd);
          kRaw[l] = checkpointed && l > 0 ? kRaw[0] : z(n, kvd);
          rstdQ[l] = checkpointed && l > 0 ? rstdQ[0] : z((long) n * c.numHeads());
          rstdK[l] = checkpointed && l > 0 ? rstdK[0] : z((long) n * c.numKvHeads());
        }
        mid[l] = checkpointed && l > 0 ? mid[0] : z(n, d);
        xn2[l] = checkpointed && l > 0 ? xn2[0] : z(n, d);
        rstd2[l] = checkpointed && l > 0 ? rstd2[0] : z(n);
        g[l] = checkpointed && l > 0 ? g[0] : z(n, f);
        u[l] = checkpointed && l > 0 ? u[0] : z(n, f);
        h[l] = checkpointed && l > 0 ? h[0] : z(n, f);
        qv[l] = attn.queries(qh[l].arr);
        kv[l] = attn.keys(kh[l].arr);
        vv[l] = attn.keys(vh[l].arr);
        pv[l] = attn.queries(p[l].arr);
        if (adapters != null) {
          for (int mi = 0; mi < LlamaWeights.MODULES.size(); mi++) {
            AdapterModule am = adapters.module(l, LlamaWeights.MODULES.get(mi));
            if (am != null) {
              acts[l][mi] = am.newActs(n, dt);
            }
          }
        }
      }
      qLin = z(n, qd);
      kLin = z(n, kvd);
      vLin = z(n, kvd);
      oh = z((long) bh * seq, hd);
      ov = attn.queries(oh.arr);
      tmpD = z(n, d);
      xnF = z(n, d);
      rstdF = z(n);
      xnG = z(n, d);
      head = new LmHeadLoss(c.vocabSize(), d,
          Math.min(n, headChunkRows > 0 ? headChunkRows : LmHeadLoss.defaultChunkRows(c.vocabSize())), dt);
      dres = z(n, d);
      dmid = z(n, d);
      dxn = z(n, d);
      dh = z(n, f);
      dg = z(n, f);
      du = z(n, f);
      datt = z(n, qd);
      dOh = z((long) bh * seq, hd);
      dQh = z((long) bh * seq, hd);
      dKh = z((long) bkv * seq, hd);
      dVh = z((long) bkv * seq, hd);
      dP = z((long) bh * seq, seq);
      dq = z(n, qd);
      dqRaw = qkNorm ? z(n, qd) : null;
      dkRaw = qkNorm ? z(n, kvd) : null;
      dk = z(n, kvd);
      dv = z(n, kvd);
      dxnG = z(n, d);
      dOv = attn.queries(dOh.arr);
      dQv = attn.queries(dQh.arr);
      dKv = attn.keys(dKh.arr);
      dVv = attn.keys(dVh.arr);
      dPv = attn.queries(dP.arr);
    }

    private Buf z(long... shape) {
      return Buf.zeros(dt, shape);
    }
  }

  Workspace workspace(int bsz, int seq) {
    if (seq > rope.maxPos()) {
      throw new IllegalArgumentException("sequence length " + seq + " exceeds max_position_embeddings "
          + rope.maxPos());
    }
    long key = ((long) bsz << 32) | seq;
    return workspaces.computeIfAbsent(key, k -> new Workspace(bsz, seq, checkpointing));
  }

  /** Drops cached activation buffers (they are rebuilt on the next call). */
  public void releaseWorkspaces() {
    workspaces.clear();
    last = null;
  }

  // ------------------------------------------------------------------ forward

  private AdapterModule adapter(int layer, int mi) {
    return adapters == null || !adaptersEnabled ? null : adapters.module(layer, LlamaWeights.MODULES.get(mi));
  }

  private void proj(Workspace ws, int layer, int mi, FrozenLinear base, Buf x, Buf y, long seed) {
    long t0 = Timers.start();
    AdapterModule am = adapter(layer, mi);
    if (am == null) {
      base.forward(x.arr, y.arr);
    } else {
      am.forward(base, x.arr, y.arr, ws.acts[layer][mi], ws.training, seed * 131 + layer * 7L + mi);
    }
    Timers.stop(mi < 4 ? "projections" : "mlp", t0); // q,k,v,o | gate,up,down
  }

  private void projBack(Workspace ws, int layer, int mi, FrozenLinear base, Buf dy, Buf x, Buf dx, double beta) {
    long t0 = Timers.start();
    if (full != null) {
      full.linear(base, dy.arr, x.arr); // forward: y = x·Wᵀ (+ b)  =>  dW += dyᵀ·x, db += Σ_rows dy
      full.bias(w.layers[layer].bias(mi), dy, ws.n);
    }
    AdapterModule am = adapter(layer, mi);
    if (am == null) {
      base.backwardInput(dy.arr, dx.arr, beta);
    } else {
      am.backward(base, dy.arr, dx.arr, beta, ws.acts[layer][mi]);
    }
    Timers.stop(mi < 4 ? "projections.back" : "mlp.back", t0);
  }

  /**
   * Runs the forward pass and returns the negative log-likelihood of every target, in the order
   * of their positions. training turns on adapter dropout (seeded by seed).
   */
  public double[] forward(Batch batch, boolean training, long seed) {
    Workspace ws = workspace(batch.batch(), batch.seq());
    ws.batch = batch;
    ws.training = training;
    last = ws;
    int n = ws.n;
    int d = c.hiddenSize();
    int seq = ws.seq;
    int bsz = ws.bsz;
    int vocab = c.vocabSize();
    int[] tok = batch.tokens();
    // embedding: xs[0][i] = E[tok[i]]
    Buf x0 = ws.xs[0];
    for (int i = 0; i < n; i++) {
      int t = tok[i];
      if (t < 0 || t >= vocab) {
        throw new IllegalArgumentException("token id " + t + " at position " + i + " outside vocabulary of "
            + vocab);
      }
    }
    RowCopy.gather(x0, w.embed, tok, n, d);
    double eps = c.rmsNormEps();
    ws.seed = seed;
    for (int l = 0; l < c.numLayers(); l++) {
      layerForward(ws, l, seed);
    }
    RmsNorm.forward(ws.xnF, ws.rstdF, ws.xs[c.numLayers()], w.finalNorm, n, d, eps);
    // LM head only on the rows that carry a target
    int[] targets = batch.targets();
    int m = 0;
    int[] rows = new int[n];
    for (int i = 0; i < n; i++) {
      if (targets[i] >= 0) {
        if (targets[i] >= vocab) {
          throw new IllegalArgumentException("target id " + targets[i] + " outside vocabulary of " + vocab);
        }
        rows[m++] = i;
      }
    }
    ws.targetRows = java.util.Arrays.copyOf(rows, m);
    ws.m = m;
    ws.targetIds = new int[m];
    for (int r = 0; r < m; r++) {
      ws.targetIds[r] = targets[ws.targetRows[r]];
    }
    if (m == 0) {
      return new double[0];
    }
    RowCopy.gather(ws.xnG, ws.xnF, ws.targetRows, m, d);
    long th = Timers.start();
    // nll = logsumexp(xG·Wᵀ) − z[target], chunk by chunk over the rows
    double[] nll = ws.head.forward(w.lmHead, ws.xnG.arr, m, ws.targetIds);
    Timers.stop("head", th);
    return nll;
  }

  /**
   * One decoder layer: xs[l+1] from xs[l], keeping what backward needs in the workspace (with
   * checkpointing, in the shared layer buffers).
   */
  private void layerForward(Workspace ws, int l, long seed) {
    int n = ws.n;
    int d = c.hiddenSize();
    int seq = ws.seq;
    int bsz = ws.bsz;
    double eps = c.rmsNormEps();
    Batch batch = ws.batch;
    LlamaWeights.Layer lw = w.layers[l];
    RmsNorm.forward(ws.xn1[l], ws.rstd1[l], ws.xs[l], lw.attnNorm(), n, d, eps);
    boolean qkNorm = c.qkNorm();
    Buf qOut = qkNorm ? ws.qRaw[l] : ws.qLin;
    Buf kOut = qkNorm ? ws.kRaw[l] : ws.kLin;
    proj(ws, l, 0, lw.q(), ws.xn1[l], qOut, seed);
    proj(ws, l, 1, lw.k(), ws.xn1[l], kOut, seed);
    proj(ws, l, 2, lw.v(), ws.xn1[l], ws.vLin, seed);
    // Qwen2: y = x·Wᵀ + b (+ adapter); the frozen bias adds after LoRA/DoRA as in PEFT
    addBias(qOut, lw.qBias(), n);
    addBias(kOut, lw.kBias(), n);
    addBias(ws.vLin, lw.vBias(), n);
    if (qkNorm) {
      // Qwen3: every head of q and k RMS-normalised over head_dim (rows of width headDim)
      int hd = c.headDim();
      RmsNorm.forward(ws.qLin, ws.rstdQ[l], qOut, lw.qNorm(), n * c.numHeads(), hd, eps);
      RmsNorm.forward(ws.kLin, ws.rstdK[l], kOut, lw.kNorm(), n * c.numKvHeads(), hd, eps);
    }
    int[] pos = batch.positions();
    rope.toHeads(ws.qh[l], ws.qLin, bsz, seq, c.numHeads(), true, pos);
    rope.toHeads(ws.kh[l], ws.kLin, bsz, seq, c.numKvHeads(), true, pos);
    rope.toHeads(ws.vh[l], ws.vLin, bsz, seq, c.numKvHeads(), false);
    long ta = Timers.start();
    ws.attn.forward(ws.ov, ws.pv[l], ws.p[l], ws.qv[l], ws.kv[l], ws.vv[l], pos);
    Timers.stop("attention", ta);
    rope.fromHeads(ws.att[l], ws.oh, bsz, seq, c.numHeads(), false);
    proj(ws, l, 3, lw.o(), ws.att[l], ws.tmpD, seed);
    ws.mid[l].arr.assign(ws.xs[l].arr).addi(ws.tmpD.arr);
    RmsNorm.forward(ws.xn2[l], ws.rstd2[l], ws.mid[l], lw.mlpNorm(), n, d, eps);
    proj(ws, l, 4, lw.gate(), ws.xn2[l], ws.g[l], seed);
    proj(ws, l, 5, lw.up(), ws.xn2[l], ws.u[l], seed);
    SwiGlu.forward(ws.h[l], ws.g[l], ws.u[l], n, c.intermediateSize());
    proj(ws, l, 6, lw.down(), ws.h[l], ws.tmpD, seed);
    ws.xs[l + 1].arr.assign(ws.mid[l].arr).addi(ws.tmpD.arr);
  }

  /** y[i, :] += b for every row; nothing when b is null. */
  private static void addBias(Buf y, Buf b, int rows) {
    if (b == null) {
      return;
    }
    int w = b.length();
    Par.rows(rows, (lo, hi) -> {
      for (int i = lo; i < hi; i++) {
        int off = i * w;
        for (int j = 0; j < w; j++) {
          y.set(off + j, y.get(off + j) + b.get(j));
        }
      }
    });
  }

  private static INDArray rowsView(INDArray a, int rows) {
    return rows == a.size(0) ? a : a.get(NDArrayIndex.interval(0, rows), NDArrayIndex.all());
  }

  /**
   * Full-vocabulary logits at the last position of one sequence, from a full forward over all of it
   * (the reference that cached generation is checked against).
   */
  public double[] lastLogits(int[] tokens) {
    int n = tokens.length;
    int[] none = new int[n];
    java.util.Arrays.fill(none, Batch.IGNORE);
    forward(new Batch(1, n, tokens, none), false, 0);
    int d = c.hiddenSize();
    Buf h = Buf.zeros(dt, 1, d);
    for (int j = 0; j < d; j++) {
      h.set(j, last.xnF.get((n - 1) * d + j));
    }
    Buf z = Buf.zeros(dt, 1, c.vocabSize());
    w.lmHead.forward(h.arr, z.arr);
    double[] out = new double[c.vocabSize()];
    for (int i = 0; i < out.length; i++) {
      out[i] = z.get(i);
    }
    return out;
  }

  /** Forward without dropout; the sum of log p over each sequence's targets. */
  public double[] sequenceLogProbs(Batch b) {
    double[] nll = forward(b, false, 0);
    return sequenceLogProbs(b, last.targetRows, nll);
  }


  // ------------------------------------------------------------------ backward

  /**
   * Backward of loss = Σ_r weight[r]·nll[r] for the last forward. Adds into the adapters'
   * gradient accumulators. Returns the gradient with respect to the embeddings' output
   * ([n, d], owned by the workspace) for tests.
   */
  public INDArray backward(double[] weight) {
    Workspace ws = last;
    if (ws == null) {
      throw new IllegalStateException("backward without forward");
    }
    if (weight.length != ws.m) {
      throw new IllegalArgumentException("need one weight per target: " + ws.m + ", got " + weight.length);
    }
    int n = ws.n;
    int d = c.hiddenSize();
    int seq = ws.seq;
    int bsz = ws.bsz;
    int f = c.intermediateSize();
    ws.dxn.zero();
    long th = Timers.start();
    if (ws.m > 0) {
      // forward: nll = −log softmax(xG·Wᵀ)[t]  =>  dxG = w·(softmax − onehot(t))·W, chunk by chunk;
      // a trained head (train.mode full) adds dW += dzᵀ·xG per chunk
      LmHeadLoss.HeadGradient hook = full != null ? full::head : headGradient;
      ws.head.backward(w.lmHead, ws.xnG.arr, ws.m, ws.targetIds, weight, ws.dxnG.arr, hook);
      RowCopy.scatter(ws.dxn, ws.dxnG, ws.targetRows, ws.m, d);
    }
    Timers.stop("head.back", th);
    int nl = c.numLayers();
    RmsNorm.backward(ws.dres, ws.dxn, ws.xs[nl], w.finalNorm, ws.rstdF, n, d, false);
    if (full != null) {
      full.norm(w.finalNorm, ws.dxn, ws.xs[nl], ws.rstdF, n, d);
    }
    for (int l = nl - 1; l >= 0; l--) {
      if (ws.checkpointed && l < nl - 1) {
        layerForward(ws, l, ws.seed); // the shared buffers still hold layer nl−1 from forward
      }
      LlamaWeights.Layer lw = w.layers[l];
      // forward: xs[l+1] = mid + down(h)  =>  dh = down.backward(dres), dmid = dres + ...
      projBack(ws, l, 6, lw.down(), ws.dres, ws.h[l], ws.dh, 0.0);
      SwiGlu.backward(ws.dg, ws.du, ws.dh, ws.g[l], ws.u[l], n, f);
      projBack(ws, l, 4, lw.gate(), ws.dg, ws.xn2[l], ws.dxn, 0.0);
      projBack(ws, l, 5, lw.up(), ws.du, ws.xn2[l], ws.dxn, 1.0);
      ws.dmid.arr.assign(ws.dres.arr);
      RmsNorm.backward(ws.dmid, ws.dxn, ws.mid[l], lw.mlpNorm(), ws.rstd2[l], n, d, true);
      if (full != null) {
        full.norm(lw.mlpNorm(), ws.dxn, ws.mid[l], ws.rstd2[l], n, d);
      }
      // forward: mid = xs[l] + o(att)
      projBack(ws, l, 3, lw.o(), ws.dmid, ws.att[l], ws.datt, 0.0);
      rope.toHeads(ws.dOh, ws.datt, bsz, seq, c.numHeads(), false);
      long ta = Timers.start();
      int[] pos = ws.batch.positions();
      ws.attn.backward(ws.dQv, ws.dKv, ws.dVv, ws.dPv, ws.dP, ws.dOv, ws.pv[l], ws.p[l],
          ws.qv[l], ws.kv[l], ws.vv[l], pos);
      Timers.stop("attention.back", ta);
      rope.fromHeads(ws.dq, ws.dQh, bsz, seq, c.numHeads(), true, pos);
      rope.fromHeads(ws.dk, ws.dKh, bsz, seq, c.numKvHeads(), true, pos);
      rope.fromHeads(ws.dv, ws.dVh, bsz, seq, c.numKvHeads(), false);
      Buf dqIn = ws.dq;
      Buf dkIn = ws.dk;
      if (c.qkNorm()) {
        int hd = c.headDim();
        RmsNorm.backward(ws.dqRaw, ws.dq, ws.qRaw[l], lw.qNorm(), ws.rstdQ[l], n * c.numHeads(), hd, false);
        RmsNorm.backward(ws.dkRaw, ws.dk, ws.kRaw[l], lw.kNorm(), ws.rstdK[l], n * c.numKvHeads(), hd, false);
        if (full != null) {
          full.norm(lw.qNorm(), ws.dq, ws.qRaw[l], ws.rstdQ[l], n * c.numHeads(), hd);
          full.norm(lw.kNorm(), ws.dk, ws.kRaw[l], ws.rstdK[l], n * c.numKvHeads(), hd);
        }
        dqIn = ws.dqRaw;
        dkIn = ws.dkRaw;
      }
      projBack(ws, l, 0, lw.q(), dqIn, ws.xn1[l], ws.dxn, 0.0);
      projBack(ws, l, 1, lw.k(), dkIn, ws.xn1[l], ws.dxn, 1.0);
      projBack(ws, l, 2, lw.v(), ws.dv, ws.xn1[l], ws.dxn, 1.0);
      ws.dres.arr.assign(ws.dmid.arr);
      RmsNorm.backward(ws.dres, ws.dxn, ws.xs[l], lw.attnNorm(), ws.rstd1[l], n, d, true);
      if (full != null) {
        full.norm(lw.attnNorm(), ws.dxn, ws.xs[l], ws.rstd1[l], n, d);
      }
    }
    if (full != null) {
      full.embedding(ws.batch.tokens(), ws.dres.arr);
    }
    return ws.dres.arr;
  }

  /** Sum of log p over each sequence's targets (the completion log-prob), from NLLs of a forward. */
  public static double[] sequenceLogProbs(Batch b, int[] targetRows, double[] nll) {
    double[] lp = new double[b.batch()];
    for (int r = 0; r < nll.length; r++) {
      lp[targetRows[r] / b.seq()] -= nll[r];
    }
    return lp;
  }

  /** All parameters' gradients as one list, in adapter order. */
  public List<ai.lathe.model.adapter.Param> params() {
    if (full != null) {
      return full.params();
    }
    return adapters == null ? List.of() : adapters.params();
  }

}
