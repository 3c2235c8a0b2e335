package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** BLAS on sub-blocks (offset + row stride) against a naive triple loop, in float and double. */
class RawGemmTest {
  private static Buf rand(DataType dt, Random r, int len) {
    Buf b = Buf.zeros(dt, len);
    for (int i = 0; i < len; i++) {
      b.set(i, r.nextGaussian());
    }
    return b;
  }

  /** op(x)[i, j] for a block at off with row stride ld, read transposed when t. */
  private static double el(Buf x, int off, int ld, boolean t, int i, int j) {
    return t ? x.get(off + j * ld + i) : x.get(off + i * ld + j);
  }

  @Test
  void blocksMatchNaiveProduct() {
    Random r = new Random(3);
    int m = 5;
    int n = 4;
    int k = 3;
    for (DataType dt : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
      for (boolean ta : new boolean[] {false, true}) {
        for (boolean tb : new boolean[] {false, true}) {
          int lda = 9;
          int ldb = 7;
          int ldc = 6;
          int aOff = 4;
          int bOff = 2;
          int cOff = 3;
          Buf a = rand(dt, r, aOff + lda * 6);
          Buf b = rand(dt, r, bOff + ldb * 5);
          Buf c = rand(dt, r, cOff + ldc * m + 2);
          Buf c0 = Buf.zeros(dt, c.length());
          for (int i = 0; i < c.length(); i++) {
            c0.set(i, c.get(i));
          }
          RawGemm.gemm(ta, tb, m, n, k, 0.5, RawGemm.Block.of(a.arr, aOff, lda), RawGemm.Block.of(b.arr, bOff, ldb),
              2.0, RawGemm.Block.of(c.arr, cOff, ldc));
          double tol = dt == DataType.FLOAT ? 1e-5 : 1e-12;
          for (int idx = 0; idx < c.length(); idx++) {
            int rel = idx - cOff;
            int i = Math.floorDiv(rel, ldc);
            int j = Math.floorMod(rel, ldc);
            double want = c0.get(idx);
            if (rel >= 0 && i < m && j < n) {
              double s = 0;
              for (int p = 0; p < k; p++) {
                s += el(a, aOff, lda, ta, i, p) * el(b, bOff, ldb, tb, p, j);
              }
              want = 0.5 * s + 2.0 * c0.get(idx);
            }
            assertEquals(want, c.get(idx), tol, dt + " ta " + ta + " tb " + tb + " c[" + idx + "]");
          }
        }
      }
    }
  }

  /** A block of a row view starts at the view's first element, not its owner's (or twice past it). */
  @Test
  void aRowViewIsReadFromItsOwnFirstRow() {
    Random r = new Random(5);
    Buf a = rand(DataType.FLOAT, r, 10 * 6);
    Buf b = rand(DataType.FLOAT, r, 6 * 4);
    Buf c = Buf.zeros(DataType.FLOAT, 12 * 4);
    org.nd4j.linalg.api.ndarray.INDArray a2 = a.arr.reshape('c', 10, 6);
    org.nd4j.linalg.api.ndarray.INDArray c2 = c.arr.reshape('c', 12, 4);
    org.nd4j.linalg.api.ndarray.INDArray av = a2.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(3, 8),
        org.nd4j.linalg.indexing.NDArrayIndex.all());
    org.nd4j.linalg.api.ndarray.INDArray cv = c2.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(5, 10),
        org.nd4j.linalg.indexing.NDArrayIndex.all());
    // rows 1..3 of the view (rows 4..6 of a) times b into rows 2..4 of cv (rows 7..9 of c)
    RawGemm.gemm(false, false, 3, 4, 6, 1.0, RawGemm.Block.of(av, 6, 6), RawGemm.Block.of(b.arr, 0, 4), 0.0,
        RawGemm.Block.of(cv, 2 * 4, 4));
    for (int row = 0; row < 12; row++) {
      for (int j = 0; j < 4; j++) {
        double want = 0;
        if (row >= 7 && row <= 9) {
          for (int q = 0; q < 6; q++) {
            want += a.get((row - 3) * 6 + q) * b.get(q * 4 + j);
          }
        }
        assertEquals(want, c.get(row * 4 + j), 1e-5, "c[" + row + ", " + j + "]");
      }
    }
  }

  @Test
  void refusesBlocksOutsideTheirBuffer() {
    Buf a = Buf.zeros(DataType.FLOAT, 10);
    var e = assertThrows(IllegalArgumentException.class, () -> RawGemm.gemm(false, false, 3, 3, 3, 1.0,
        RawGemm.Block.of(a.arr, 2, 3), RawGemm.Block.of(a.arr, 0, 3), 0.0, RawGemm.Block.of(a.arr, 0, 3)));
    assertTrue(e.getMessage().contains("gemm a"), e.getMessage());
    Buf d = Buf.zeros(DataType.DOUBLE, 100);
    assertThrows(IllegalArgumentException.class, () -> RawGemm.gemm(false, false, 2, 2, 2, 1.0,
        RawGemm.Block.of(a.arr, 0, 2), RawGemm.Block.of(d.arr, 0, 2), 0.0, RawGemm.Block.of(d.arr, 0, 2)));
  }
}
