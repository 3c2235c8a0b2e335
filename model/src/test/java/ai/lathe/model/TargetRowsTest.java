package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.nn.Buf;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** The head's row selection, written out by hand. */
class TargetRowsTest {

  @Test
  void selectsTheRowsWithATargetInOrder() {
    int ig = Batch.IGNORE;
    TargetRows t = TargetRows.of(new int[] {ig, 4, ig, 0, 9, ig}, 10);
    assertArrayEquals(new int[] {1, 3, 4}, t.rows());
    assertArrayEquals(new int[] {4, 0, 9}, t.ids());
    assertEquals(0, TargetRows.of(new int[] {ig, ig}, 10).count());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TargetRows.of(new int[] {ig, 10}, 10));
    assertTrue(e.getMessage().contains("target id 10") && e.getMessage().contains("10"), e.getMessage());
  }

  /** gather picks rows; scatter writes them back and leaves the other rows alone (its transpose). */
  @Test
  void gatherAndScatterMoveWholeRows() {
    int d = 3;
    TargetRows t = TargetRows.of(new int[] {Batch.IGNORE, 1, Batch.IGNORE, 2}, 5);
    Buf x = Buf.zeros(DataType.DOUBLE, 4, d);
    for (int i = 0; i < 4 * d; i++) {
      x.set(i, 10 * (i / d) + i % d); // row r holds 10r, 10r+1, 10r+2
    }
    Buf g = Buf.zeros(DataType.DOUBLE, 4, d);
    t.gather(x, g, d);
    assertArrayEquals(new double[] {10, 11, 12, 30, 31, 32, 0, 0, 0, 0, 0, 0}, g.arr.ravel().toDoubleVector());
    Buf back = Buf.zeros(DataType.DOUBLE, 4, d);
    back.arr.assign(-1);
    t.scatter(g, back, d);
    assertArrayEquals(new double[] {-1, -1, -1, 10, 11, 12, -1, -1, -1, 30, 31, 32}, back.arr.ravel().toDoubleVector());
  }
}
