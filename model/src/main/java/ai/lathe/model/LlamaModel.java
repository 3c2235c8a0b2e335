package ai.lathe.model;

import ai.lathe.model.adapter.AdapterModule;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.nn.Attention;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.LmHeadLoss;
import ai.lathe.model.nn.RmsNorm;
import ai.lathe.model.nn.Rope;
import ai.lathe.model.nn.RowCopy;
import ai.lathe.model.nn.Seeds;
import ai.lathe.model.nn.Timers;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

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
  final class Workspace implements DecoderLayer.Projections {
    final int bsz;
    final int seq;
    final int n;
    final Buf[] xs; // [L+1][n, d] residual stream entering each layer (xs[L] leaves the last)
    final LayerActs[] layers; // [L] what each layer's forward keeps (checkpointed: one shared set of buffers)
    final DecoderLayer layer; // the layers' scratch
    final Buf xnF; // [n, d] final norm's output
    final Buf rstdF; // [n]
    final Buf xnG; // [n, d] rows with a target, gathered
    final LmHeadLoss head; // chunked LM head + NLL (holds one chunk of logits)
    final boolean checkpointed; // layers share one set of buffers (only xs is per layer)
    final Buf dres; // [n, d] gradient of the residual stream
    final Buf dxn; // [n, d] gradient of a norm's output
    final Buf dxnG; // [n, d] gradient of the gathered rows
    TargetRows targets = TargetRows.NONE; // the last forward's rows with a target
    long seed;
    Batch batch;
    boolean training;

    Workspace(int bsz, int seq, boolean checkpointed) {
      this.checkpointed = checkpointed;
      this.bsz = bsz;
      this.seq = seq;
      this.n = bsz * seq;
      int d = c.hiddenSize();
      int nl = c.numLayers();
      Attention attn = new Attention(bsz, seq, c.numHeads(), c.numKvHeads(), c.headDim(), c.slidingWindow());
      xs = new Buf[nl + 1];
      for (int l = 0; l <= nl; l++) {
        xs[l] = z(n, d);
      }
      layers = new LayerActs[nl];
      for (int l = 0; l < nl; l++) {
        layers[l] = checkpointed && l > 0 ? layers[0].withAdapters(adapterActs(l))
            : LayerActs.allocate(c, attn, bsz, seq, dt, adapterActs(l));
      }
      layer = new DecoderLayer(c, rope, attn, bsz, seq, dt);
      xnF = z(n, d);
      rstdF = z(n);
      xnG = z(n, d);
      head = new LmHeadLoss(c.vocabSize(), d,
          Math.min(n, headChunkRows > 0 ? headChunkRows : LmHeadLoss.defaultChunkRows(c.vocabSize())), n, dt);
      dres = z(n, d);
      dxn = z(n, d);
      dxnG = z(n, d);
    }

    /** Each adapted projection's activations for layer l ([7], null where no adapter). */
    private AdapterModule.Acts[] adapterActs(int l) {
      AdapterModule.Acts[] acts = new AdapterModule.Acts[Projection.ALL.size()];
      for (Projection p : Projection.ALL) {
        AdapterModule am = adapters == null ? null : adapters.module(l, p);
        if (am != null) {
          acts[p.ordinal()] = am.newActs(n, dt);
        }
      }
      return acts;
    }

    private Buf z(long... shape) {
      return Buf.zeros(dt, shape);
    }

    @Override
    public void forward(int layer, Projection p, Buf x, Buf y, AdapterModule.Acts acts) {
      long t0 = Timers.start();
      FrozenLinear base = w.layers[layer].module(p);
      AdapterModule am = adapter(layer, p);
      if (am == null) {
        base.forward(x.arr, y.arr);
      } else {
        // dropout seeded per step, layer and projection: derived (the former seed·131 + layer·7 + p
        // gave micro-batch m + 1's q/k of layer l the seed of micro-batch m's up/down of layer l + 18)
        am.forward(base, x.arr, y.arr, acts, training, Seeds.derive(Seeds.derive(seed, layer), p.ordinal()));
      }
      Timers.stop(p.inMlp() ? "mlp" : "projections", t0);
    }

    @Override
    public void backward(int layer, Projection p, Buf dy, Buf x, Buf dx, double beta, AdapterModule.Acts acts) {
      long t0 = Timers.start();
      LlamaWeights.Layer lw = w.layers[layer];
      FrozenLinear base = lw.module(p);
      if (full != null) {
        full.linear(base, dy.arr, x.arr); // forward: y = x·Wᵀ (+ b)  =>  dW += dyᵀ·x, db += Σ_rows dy
        full.bias(lw.bias(p), dy, n);
      }
      AdapterModule am = adapter(layer, p);
      if (am == null) {
        base.backwardInput(dy.arr, dx.arr, beta);
      } else {
        am.backward(base, dy.arr, dx.arr, beta, acts);
      }
      Timers.stop(p.inMlp() ? "mlp.back" : "projections.back", t0);
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

  private AdapterModule adapter(int layer, Projection p) {
    return adapters == null || !adaptersEnabled ? null : adapters.module(layer, p);
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
      ws.layer.forward(l, w.layers[l], ws, ws.layers[l], ws.xs[l], ws.xs[l + 1], batch.positions());
    }
    RmsNorm.forward(ws.xnF, ws.rstdF, ws.xs[c.numLayers()], w.finalNorm, n, d, eps);
    // LM head and loss only on the rows that carry a target: nll = logsumexp(xG·Wᵀ) − z[target]
    TargetRows tr = TargetRows.of(batch.targets(), vocab);
    ws.targets = tr;
    if (tr.count() == 0) {
      return new double[0];
    }
    tr.gather(ws.xnF, ws.xnG, d);
    long th = Timers.start();
    // a training step of a frozen head computes the head's input gradient here (no recompute in backward)
    boolean prepare = training && full == null && headGradient == null;
    double[] nll = ws.head.forward(w.lmHead, ws.xnG.arr, tr.count(), tr.ids(), prepare);
    Timers.stop("head", th);
    return nll;
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
    return sequenceLogProbs(b, last.targets.rows(), nll);
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
    TargetRows tr = ws.targets;
    if (weight.length != tr.count()) {
      throw new IllegalArgumentException("need one weight per target: " + tr.count() + ", got " + weight.length);
    }
    int n = ws.n;
    int d = c.hiddenSize();
    ws.dxn.zero();
    long th = Timers.start();
    if (tr.count() > 0) {
      // forward: nll = −log softmax(xG·Wᵀ)[t]  =>  dxG = w·(softmax − onehot(t))·W, chunk by chunk;
      // a trained head (train.mode full) adds dW += dzᵀ·xG per chunk
      LmHeadLoss.HeadGradient hook = full != null ? full::head : headGradient;
      ws.head.backward(w.lmHead, ws.xnG.arr, tr.count(), tr.ids(), weight, ws.dxnG.arr, hook);
      tr.scatter(ws.dxnG, ws.dxn, d); // forward: xG = gather(xnF)
    }
    Timers.stop("head.back", th);
    int nl = c.numLayers();
    RmsNorm.backward(ws.dres, ws.dxn, ws.xs[nl], w.finalNorm, ws.rstdF, n, d, false);
    if (full != null) {
      full.norm(w.finalNorm, ws.dxn, ws.xs[nl], ws.rstdF, n, d);
    }
    int[] pos = ws.batch.positions();
    for (int l = nl - 1; l >= 0; l--) {
      LlamaWeights.Layer lw = w.layers[l];
      if (ws.checkpointed && l < nl - 1) {
        // the shared buffers still hold layer nl−1 from forward: recompute this layer's
        ws.layer.forward(l, lw, ws, ws.layers[l], ws.xs[l], ws.xs[l + 1], pos);
      }
      ws.layer.backward(l, lw, ws, ws.layers[l], ws.xs[l], ws.dres, ws.dxn, pos, full);
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
