package ai.lathe.prep;

import java.io.Serializable;

/**
 * One tokenised training row as stored in prepared Parquet (schema version 2): one example, or
 * several packed ones whose positions restart at 0 at each example's first token.
 */
public record PreparedRow(
    String id, // content id (hash of normalised content)
    String sourceId, // the input row's own id, if any
    String lang,
    String split, // train | validation
    int[] inputIds,
    boolean[] lossMask, // true where the token is trained on (completion tokens)
    int[] positionIds, // 0..n-1, restarting per example in packed rows
    int numTokens,
    int numLossTokens,
    boolean truncated) implements Serializable {

  /** Positions 0..n-1 of an unpacked example. */
  public static int[] sequential(int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    return p;
  }
}
