package ai.lathe.model;

import java.util.Arrays;
import java.util.List;

/**
 * A padded batch of token sequences, [batch, seq] row-major. targets[i] is the token that
 * position i must predict, or -1 where no loss applies (prompt tokens, padding, the last token).
 * seqOf maps each position to its sequence.
 */
public record Batch(int batch, int seq, int[] tokens, int[] targets) {
  public static final int IGNORE = -1;

  public Batch {
    if (tokens.length != batch * seq || targets.length != batch * seq) {
      throw new IllegalArgumentException("batch arrays must hold batch*seq entries");
    }
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
    int b = ids.size();
    int[] tok = new int[b * seq];
    int[] tgt = new int[b * seq];
    Arrays.fill(tok, padId);
    Arrays.fill(tgt, IGNORE);
    for (int i = 0; i < b; i++) {
      int[] s = ids.get(i);
      boolean[] m = train.get(i);
      if (s.length > seq) {
        throw new IllegalArgumentException("sequence " + i + " has " + s.length + " tokens, more than " + seq);
      }
      System.arraycopy(s, 0, tok, i * seq, s.length);
      for (int t = 0; t + 1 < s.length; t++) {
        if (m[t + 1]) {
          tgt[i * seq + t] = s[t + 1];
        }
      }
    }
    return new Batch(b, seq, tok, tgt);
  }
}
