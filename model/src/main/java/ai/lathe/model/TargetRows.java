package ai.lathe.model;

import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.RowCopy;

/**
 * The rows of a batch that carry a target, in position order, and their target ids: the only rows
 * the LM head and its loss see. gather and scatter move rows between the batch's [n, d] layout
 * and the head's [m, d] one (scatter is gather's transpose: the backward of the gather).
 */
record TargetRows(
    int[] rows, // [m] row index in [0, n)
    int[] ids) { // [m] target id of each row

  static final TargetRows NONE = new TargetRows(new int[0], new int[0]);

  TargetRows {
    if (rows.length != ids.length) {
      throw new IllegalArgumentException("one target id per row: " + rows.length + " rows, " + ids.length + " ids");
    }
  }

  /** The rows whose target (Batch.IGNORE below 0) is set; a target ≥ vocab is an error naming it. */
  static TargetRows of(int[] targets, int vocab) {
    int m = 0;
    int[] rows = new int[targets.length];
    for (int i = 0; i < targets.length; i++) {
      if (targets[i] >= 0) {
        if (targets[i] >= vocab) {
          throw new IllegalArgumentException("target id " + targets[i] + " outside vocabulary of " + vocab);
        }
        rows[m++] = i;
      }
    }
    int[] ids = new int[m];
    for (int r = 0; r < m; r++) {
      ids[r] = targets[rows[r]];
    }
    return new TargetRows(java.util.Arrays.copyOf(rows, m), ids);
  }

  int count() {
    return rows.length;
  }

  /** dst[r, :] = src[rows[r], :] for every target row r (rows of width d). */
  void gather(Buf src, Buf dst, int d) {
    RowCopy.gather(dst, src, rows, rows.length, d);
  }

  /** dst[rows[r], :] = src[r, :] (the transpose of gather; other rows of dst are left as they are). */
  void scatter(Buf src, Buf dst, int d) {
    RowCopy.scatter(dst, src, rows, rows.length, d);
  }
}
