package ai.lathe.merge;

import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Re-factors a dense update ΔW [out, in] into a rank-r LoRA pair by truncated SVD:
 * ΔW ≈ U_r Σ_r V_rᵀ, B = U_r √Σ_r, A = √Σ_r V_rᵀ (scale 1). Small matrices use LAPACK's SVD;
 * large ones a randomized range finder (Halko et al., 2011) with oversampling and power iterations.
 * The reported error is measured: ‖ΔW − B·A‖_F / ‖ΔW‖_F.
 */
public final class LowRank {
  /** A factored update and its relative Frobenius truncation error. */
  public record Factors(float[] a, float[] b, int rank, double relativeError) {}

  private LowRank() {}

  public static Factors factor(float[] dw, int out, int in, int rank, long seed) {
    int r = Math.min(rank, Math.min(out, in));
    // float -> double element by element into the off-heap array (exact; no float copy, no cast op)
    INDArray w = Nd4j.create(DataType.DOUBLE, new long[] {out, in}, 'c');
    java.nio.DoubleBuffer wb = w.data().asNioDouble();
    double sq0 = 0;
    for (int i = 0; i < out * in; i++) {
      wb.put(i, dw[i]);
      sq0 += (double) dw[i] * dw[i];
    }
    double norm = Math.sqrt(sq0);
    INDArray u;
    INDArray s;
    INDArray vt;
    if (Math.min(out, in) <= 512 || r + 10 >= Math.min(out, in)) {
      INDArray[] usv = svd(w.dup('f'));
      u = usv[0];
      s = usv[1];
      vt = usv[2];
    } else {
      INDArray[] usv = randomized(w, r, 10, 2, seed);
      u = usv[0];
      s = usv[1];
      vt = usv[2];
    }
    INDArray b = Nd4j.zeros(DataType.DOUBLE, out, r);
    INDArray a = Nd4j.zeros(DataType.DOUBLE, r, in);
    for (int i = 0; i < r; i++) {
      double sq = Math.sqrt(s.getDouble(i));
      b.getColumn(i).assign(u.getColumn(i).mul(sq));
      a.getRow(i).assign(vt.getRow(i).mul(sq));
    }
    Nd4j.gemm(b, a, w, false, false, -1.0, 1.0); // w ← ΔW − B·A (w is not needed after)
    wb = w.data().asNioDouble();
    double sq = 0;
    for (int i = 0; i < out * in; i++) {
      double v = wb.get(i);
      sq += v * v;
    }
    double err = norm == 0 ? 0 : Math.sqrt(sq) / norm;
    return new Factors(a.castTo(DataType.FLOAT).dup('c').data().asFloat(), b.castTo(DataType.FLOAT).dup('c').data().asFloat(),
        r, err);
  }

  /** Full SVD of m [rows, cols] (Fortran order, overwritten): U [rows, k], S [k], Vᵀ [k, cols], k = min. */
  static INDArray[] svd(INDArray m) {
    int rows = (int) m.size(0);
    int cols = (int) m.size(1);
    int k = Math.min(rows, cols);
    INDArray s = Nd4j.create(DataType.DOUBLE, k);
    INDArray u = Nd4j.create(DataType.DOUBLE, new long[] {rows, rows}, 'f');
    INDArray vt = Nd4j.create(DataType.DOUBLE, new long[] {cols, cols}, 'f');
    Nd4j.getBlasWrapper().lapack().gesvd(m, s, u, vt);
    return new INDArray[] {u.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
        org.nd4j.linalg.indexing.NDArrayIndex.interval(0, k)).dup('c'), s,
        vt.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, k), org.nd4j.linalg.indexing.NDArrayIndex.all()).dup('c')};
  }

  static INDArray[] randomized(INDArray w, int r, int oversample, int powerIters, long seed) {
    int in = (int) w.size(1);
    int l = r + oversample;
    Random rng = new Random(seed);
    double[] g = new double[in * l];
    for (int i = 0; i < g.length; i++) {
      g[i] = rng.nextGaussian();
    }
    INDArray omega = Nd4j.create(g, new long[] {in, l}, DataType.DOUBLE);
    long out = w.size(0);
    INDArray y = Nd4j.zeros(DataType.DOUBLE, out, l);
    INDArray z = Nd4j.zeros(DataType.DOUBLE, in, l);
    Nd4j.gemm(w, omega, y, false, false, 1.0, 0.0);
    y = orthonormalize(y);
    for (int q = 0; q < powerIters; q++) {
      Nd4j.gemm(w, y, z, true, false, 1.0, 0.0); // Wᵀ·Y by the transpose flag, not a transposed view
      z = orthonormalize(z);
      Nd4j.gemm(w, z, y, false, false, 1.0, 0.0);
      y = orthonormalize(y);
    }
    INDArray small = Nd4j.zeros(DataType.DOUBLE, l, in);
    Nd4j.gemm(y, w, small, true, false, 1.0, 0.0); // [l, in]
    // small = Ũ Σ Vᵀ from the eigenvectors of the l×l Gram matrix: small·smallᵀ = Ũ Σ² Ũᵀ,
    // Vᵀ = Σ⁻¹ Ũᵀ small (only the top r are kept, far from the tiny eigenvalues)
    INDArray gram = Nd4j.zeros(DataType.DOUBLE, l, l);
    Nd4j.gemm(small, small, gram, false, true, 1.0, 0.0);
    double[][] vecs = new double[l][l];
    double[] vals = jacobiEigen(gram.toDoubleMatrix(), vecs);
    Integer[] order = new Integer[l];
    for (int i = 0; i < l; i++) {
      order[i] = i;
    }
    java.util.Arrays.sort(order, (a, b) -> Double.compare(vals[b], vals[a]));
    INDArray ut = Nd4j.zeros(DataType.DOUBLE, l, l); // rows: eigenvectors, largest first
    INDArray sv = Nd4j.zeros(DataType.DOUBLE, l);
    for (int i = 0; i < l; i++) {
      int k = order[i];
      double sigma = Math.sqrt(Math.max(0, vals[k]));
      sv.putScalar(i, sigma);
      for (int j = 0; j < l; j++) {
        ut.putScalar(i, j, vecs[j][k]);
      }
    }
    INDArray vt = Nd4j.zeros(DataType.DOUBLE, l, in);
    Nd4j.gemm(ut, small, vt, false, false, 1.0, 0.0);
    for (int i = 0; i < l; i++) {
      double sigma = sv.getDouble(i);
      vt.getRow(i).muli(sigma > 0 ? 1 / sigma : 0);
    }
    INDArray u = Nd4j.zeros(DataType.DOUBLE, out, l);
    Nd4j.gemm(y, ut, u, false, true, 1.0, 0.0); // [out, l]
    return new INDArray[] {u, sv, vt};
  }

  /** Eigenvalues (returned) and eigenvectors (columns of vecs) of a small symmetric matrix, by cyclic Jacobi. */
  static double[] jacobiEigen(double[][] a0, double[][] vecs) {
    int n = a0.length;
    double[][] a = new double[n][];
    for (int i = 0; i < n; i++) {
      a[i] = a0[i].clone();
      java.util.Arrays.fill(vecs[i], 0);
      vecs[i][i] = 1;
    }
    for (int sweep = 0; sweep < 100; sweep++) {
      double off = 0;
      for (int p = 0; p < n; p++) {
        for (int q = p + 1; q < n; q++) {
          off += a[p][q] * a[p][q];
        }
      }
      if (off < 1e-30) {
        break;
      }
      for (int p = 0; p < n; p++) {
        for (int q = p + 1; q < n; q++) {
          if (Math.abs(a[p][q]) < 1e-300) {
            continue;
          }
          double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
          double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
          if (theta == 0) {
            t = 1;
          }
          double c = 1 / Math.sqrt(t * t + 1);
          double sn = t * c;
          for (int k = 0; k < n; k++) {
            double akp = a[k][p];
            double akq = a[k][q];
            a[k][p] = c * akp - sn * akq;
            a[k][q] = sn * akp + c * akq;
          }
          for (int k = 0; k < n; k++) {
            double apk = a[p][k];
            double aqk = a[q][k];
            a[p][k] = c * apk - sn * aqk;
            a[q][k] = sn * apk + c * aqk;
          }
          for (int k = 0; k < n; k++) {
            double vkp = vecs[k][p];
            double vkq = vecs[k][q];
            vecs[k][p] = c * vkp - sn * vkq;
            vecs[k][q] = sn * vkp + c * vkq;
          }
        }
      }
    }
    double[] vals = new double[n];
    for (int i = 0; i < n; i++) {
      vals[i] = a[i][i];
    }
    return vals;
  }

  /** Modified Gram–Schmidt on the columns (twice, for stability), in plain loops. */
  static INDArray orthonormalize(INDArray y) {
    int rows = (int) y.size(0);
    int cols = (int) y.size(1);
    double[] flat = y.dup('c').data().asDouble();
    double[][] c = new double[cols][rows];
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        c[j][i] = flat[i * cols + j];
      }
    }
    for (int pass = 0; pass < 2; pass++) {
      for (int j = 0; j < cols; j++) {
        double[] cj = c[j];
        for (int i = 0; i < j; i++) {
          double[] ci = c[i];
          double dot = 0;
          for (int k = 0; k < rows; k++) {
            dot += ci[k] * cj[k];
          }
          for (int k = 0; k < rows; k++) {
            cj[k] -= dot * ci[k];
          }
        }
        double n = 0;
        for (int k = 0; k < rows; k++) {
          n += cj[k] * cj[k];
        }
        n = Math.sqrt(n);
        double inv = n == 0 ? 0 : 1 / n;
        for (int k = 0; k < rows; k++) {
          cj[k] *= inv;
        }
      }
    }
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        flat[i * cols + j] = c[j][i];
      }
    }
    return Nd4j.create(flat, new long[] {rows, cols}, DataType.DOUBLE);
  }
}
