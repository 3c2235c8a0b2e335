package ai.lathe.model.nn;

import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.interval;
import static org.nd4j.linalg.indexing.NDArrayIndex.point;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.shape.Gather;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The row kernels as ND4J ops on whole arrays ({@link Kernels#ND4J}): no element is read or written
 * from Java, so under the CUDA backend the work stays on the device. Each method computes exactly
 * the formula of its Java twin (same argument order); outputs are written through views of the
 * caller's arrays. A test holds the two implementations together.
 */
final class OpKernels {
  private OpKernels() {}

  /** The first rows·cols elements of a dense c-order array as a [rows, cols] view (no copy). */
  static INDArray rows(INDArray a, long rows, long cols) {
    // explicit shape arrays: reshape('c', r, c) would resolve to reshape(long rows, long cols)
    INDArray flat = a.reshape('c', new long[] {a.length()});
    if (a.length() != rows * cols) {
      flat = flat.get(interval(0, rows * cols));
    }
    return flat.reshape('c', new long[] {rows, cols});
  }

  /** forward: rstd = (mean(x²) + eps)^(−1/2) per row, y = w ⊙ x·rstd. */
  static void rmsNormForward(INDArray y, INDArray rstd, INDArray x, INDArray w, int n, int d, double eps) {
    INDArray x2 = rows(x, n, d);
    INDArray rs = Transforms.pow(x2.mul(x2).mean(1).reshape(n, 1).addi(eps), -0.5, false);
    rows(rstd, n, 1).assign(rs);
    rows(y, n, d).assign(x2.mulColumnVector(rs).muliRowVector(rows(w, 1, d)));
  }

  /** backward: dx = r·w⊙dy − (r³/d)·x·Σ(w⊙dy⊙x), added into dx when accumulate. */
  static void rmsNormBackward(INDArray dx, INDArray dy, INDArray x, INDArray w, INDArray rstd, int n, int d,
      boolean accumulate) {
    INDArray x2 = rows(x, n, d);
    INDArray rs = rows(rstd, n, 1);
    INDArray wdy = rows(dy, n, d).mulRowVector(rows(w, 1, d));
    INDArray c = wdy.mul(x2).sum(1).reshape(n, 1).muli(rs).muli(rs).muli(rs).divi(d);
    INDArray g = wdy.muliColumnVector(rs).subi(x2.mulColumnVector(c));
    INDArray out = rows(dx, n, d);
    if (accumulate) {
      out.addi(g);
    } else {
      out.assign(g);
    }
  }

  /** forward: h = g·σ(g) ⊙ u over len elements. */
  static void swiGluForward(INDArray h, INDArray g, INDArray u, long len) {
    INDArray g1 = rows(g, 1, len);
    rows(h, 1, len).assign(g1.mul(Transforms.sigmoid(g1, true)).muli(rows(u, 1, len)));
  }

  /** backward: dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))), du = dh ⊙ g·σ(g). */
  static void swiGluBackward(INDArray dg, INDArray du, INDArray dh, INDArray g, INDArray u, long len) {
    INDArray g1 = rows(g, 1, len);
    INDArray dh1 = rows(dh, 1, len);
    INDArray sig = Transforms.sigmoid(g1, true);
    INDArray dgv = dh1.mul(rows(u, 1, len)).muli(sig).muli(g1.mul(sig.rsub(1.0)).addi(1.0));
    rows(du, 1, len).assign(dh1.mul(g1).muli(sig));
    rows(dg, 1, len).assign(dgv);
  }

  /** The layout change alone: rows [b·t, h·hd] to heads [b, h, t, hd] (toHeads) or back. */
  static void heads(INDArray rowsArr, INDArray headsArr, int b, int t, int heads, int hd, boolean toHeads) {
    INDArray r4 = rowsAsHeads(rowsArr, b, t, heads, hd);
    INDArray h4 = rows(headsArr, (long) b * heads * t, hd).reshape('c', b, heads, t, hd);
    (toHeads ? h4 : r4).assign(toHeads ? r4 : h4);
  }

  /**
   * Rotate-half RoPE between rows [b·t, h·hd] and heads [b, h, t, hd]. toHeads: out0 = x0·cos −
   * x1·sin, out1 = x1·cos + x0·sin; fromHeads (the transpose): dx0 = g0·cos + g1·sin, dx1 = g1·cos −
   * g0·sin. cos, sin: [b, 1, t, half] of each token's position.
   */
  static void rope(INDArray rowsArr, INDArray headsArr, int b, int t, int heads, int hd, INDArray cos, INDArray sin,
      boolean toHeads) {
    INDArray r4 = rowsAsHeads(rowsArr, b, t, heads, hd);
    INDArray h4 = rows(headsArr, (long) b * heads * t, hd).reshape('c', b, heads, t, hd);
    INDArray src = toHeads ? r4 : h4;
    INDArray dst = toHeads ? h4 : r4;
    int half = hd / 2;
    INDArray c = cos.broadcast(b, heads, t, half);
    INDArray s = sin.broadcast(b, heads, t, half);
    INDArray x0 = src.get(all(), all(), all(), interval(0, half));
    INDArray x1 = src.get(all(), all(), all(), interval(half, hd));
    double sign = toHeads ? 1 : -1; // forward rotates by +angle, the transpose by −angle
    INDArray out0 = x0.mul(c).subi(x1.mul(s).muli(sign));
    INDArray out1 = x1.mul(c).addi(x0.mul(s).muli(sign));
    dst.get(all(), all(), all(), interval(0, half)).assign(out0);
    dst.get(all(), all(), all(), interval(half, hd)).assign(out1);
  }

  /** Rows [b·t, h·hd] viewed as [b, h, t, hd]. */
  private static INDArray rowsAsHeads(INDArray rowsArr, int b, int t, int heads, int hd) {
    return rows(rowsArr, (long) b * t, (long) heads * hd).reshape('c', b, t, heads, hd).permute(0, 2, 1, 3);
  }

  /** The rows of a [maxPos, half] table at each token's position, as [b, 1, t, half]. */
  static INDArray atPositions(INDArray table, int b, int t, int[] positions) {
    int[] idx = new int[b * t];
    for (int i = 0; i < idx.length; i++) {
      idx[i] = positions == null ? i % t : positions[i];
    }
    return table.getRows(idx).reshape('c', b, 1, t, table.size(1));
  }

  /** forward: p = softmax(s + mask) per row (mask 0 or −∞), in place on [rows, seq]. */
  static void maskedSoftmax(INDArray p, INDArray mask, long rowCount, int seq) {
    INDArray p2 = rows(p, rowCount, seq);
    p2.addi(mask.dataType() == p.dataType() ? mask : mask.castTo(p.dataType()));
    Nd4j.exec(new SoftMax(p2, p2, 1));
  }

  /** backward of softmax: dp = p ⊙ (dp − Σ p⊙dp)·scale per row, in place (masked entries: p = 0). */
  static void softmaxBackward(INDArray p, INDArray dp, long rowCount, int seq, double scale) {
    INDArray p2 = rows(p, rowCount, seq);
    INDArray dp2 = rows(dp, rowCount, seq);
    INDArray dot = p2.mul(dp2).sum(1).reshape(rowCount, 1);
    dp2.subiColumnVector(dot).muli(p2).muli(scale);
  }

  /**
   * NF4 dequantisation: byte i/2 holds weight i in its high nibble and weight i+1 in its low one;
   * w = CODE[nibble]·scale[i / 64]. packed: INT8 [n/2]; scales [n/64] in w's type; code [16].
   */
  static void nf4Dequantize(INDArray w, INDArray packed, INDArray scales, INDArray code, long n) {
    INDArray p = packed.castTo(DataType.FLOAT);
    p.addi(p.lt(0).castTo(DataType.FLOAT).muli(256)); // the unsigned byte value
    INDArray hi = Transforms.floor(p.div(16), false);
    INDArray lo = p.subi(hi.mul(16));
    INDArray w2 = rows(w, n / 2, 2);
    w2.get(all(), point(0)).assign(Nd4j.exec(new Gather(code, hi.castTo(DataType.INT32), 0))[0]);
    w2.get(all(), point(1)).assign(Nd4j.exec(new Gather(code, lo.castTo(DataType.INT32), 0))[0]);
    rows(w, n / Nf4.BLOCK, Nf4.BLOCK).muliColumnVector(scales.reshape(n / Nf4.BLOCK, 1).castTo(w.dataType()));
  }
}
