package ai.lathe.model;

import java.util.Arrays;
import java.util.List;

/**
 * A padded batch of token sequences, [batch, seq] row-major. targets[i] is the token that
 * position i must predict, or -1 where no loss applies (prompt tokens, padding, the last token).
 * positions, when not null (packed rows), holds each token's position inside its own sequence.
 */
public record Batch(int batch, int seq, int[] tokens, int[] targets, int[] positions) {
  public static final int IGNORE = -1;

  public Batch {
    if (tokens.length != batch * seq || targets.length != batch * seq) {
      throw new IllegalArgumentException("batch arrays must hold batch*seq entries");
    }
    if (positions != null && positions.length != batch * seq) {
      throw new IllegalArgumentException("positions must hold batch*seq entries");
    }
  }

  /** An unpacked batch: every row is one sequence starting at position 0. */
  public Batch(int batch, int seq, int[] tokens, int[] targets) {
    this(batch, seq, tokens, targets, null);
  }

  /** Position of token i (its row-relative index when unpacked). */
  public int position(int i) {
    return positions == null ? i % seq : positions[i];
  }

  /**
   * Sequences with the index of their first completion token: targets are the completion tokens
   * (position t predicts token t+1 when t+1 ≥ completionStart). Sequences longer than seq are
   * rejected; shorter ones are right-padded with padId.
   */
  public static Batch of(List<int[]> ids, int[] completionStart, int seq, int padId) {
    List<boolean[]> masks = new java.util.ArrayList<>();
    for (int i = 0; i < ids.size(); i++) {
      boolean[] m = new boolean[ids.get(i).length];
      for (int t = Math.max(1, completionStart[i]); t < m.length; t++) {
        m[t] = true;
      }
      masks.add(m);
    }
    return ofMasks(ids, masks, seq, padId);
  }

  public int targetCount() {
    int n = 0;
    for (int t : targets) {
      if (t >= 0) {
        n++;
      }
    }
    return n;
  }

  /**
   * Sequences with a per-token training mask: position t predicts token t+1 when train[t+1].
   * The first token is never a target.
   */
  public static Batch ofMasks(List<int[]> ids, List<boolean[]> train, int seq, int padId) {
    return ofMasks(ids, train, null, seq, padId);
  }

  /**
   * As above, for packed rows: positions restart at 0 where a new example begins; attention stays
   * within an example and no target crosses into the next one.
   */
  public static Batch ofMasks(List<int[]> ids, List<boolean[]> train, List<int[]> positions, int seq, int padId) {
    int b = ids.size();
    int[] tok = new int[b * seq];
    int[] tgt = new int[b * seq];
    Arrays.fill(tok, padId);
    Arrays.fill(tgt, IGNORE);
    int[] pos = positions == null ? null : new int[b * seq];
    for (int i = 0; i < b; i++) {
      int[] s = ids.get(i);
      boolean[] m = train.get(i);
      int[] ps = positions == null ? null : positions.get(i);
      if (s.length > seq) {
        throw new IllegalArgumentException("sequence " + i + " has " + s.length + " tokens, more than " + seq);
      }
      System.arraycopy(s, 0, tok, i * seq, s.length);
      if (pos != null) {
        int last = -1;
        for (int t = 0; t < seq; t++) {
          // padding continues the last example's positions (it is never attended to by real tokens)
          pos[i * seq + t] = ps != null && t < ps.length ? ps[t] : ++last;
          last = pos[i * seq + t];
        }
      }
      for (int t = 0; t + 1 < s.length; t++) {
        boolean sameExample = ps == null || ps[t + 1] != 0;
        if (m[t + 1] && sameExample) {
          tgt[i * seq + t] = s[t + 1];
        }
      }
    }
    return new Batch(b, seq, tok, tgt, pos);
  }
}
