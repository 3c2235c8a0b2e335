package ai.lathe.prep;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Sequence packing for SFT: examples of one (lang, split), in content-id order, are laid end to end
 * into rows of at most maxLength tokens (greedy, order kept, so reruns agree). Positions restart
 * at 0 for each example; the engine keeps attention and targets within an example.
 */
public final class Packing {
  private Packing() {}

  public static List<PreparedRow> pack(List<PreparedRow> sorted, int maxLength) {
    List<PreparedRow> out = new ArrayList<>();
    List<PreparedRow> cur = new ArrayList<>();
    int len = 0;
    for (PreparedRow r : sorted) {
      if (!cur.isEmpty() && len + r.numTokens() > maxLength) {
        out.add(join(cur));
        cur.clear();
        len = 0;
      }
      cur.add(r);
      len += r.numTokens();
    }
    if (!cur.isEmpty()) {
      out.add(join(cur));
    }
    return out;
  }

  static PreparedRow join(List<PreparedRow> rows) {
    if (rows.size() == 1) {
      return rows.get(0);
    }
    int n = 0;
    for (PreparedRow r : rows) {
      n += r.numTokens();
    }
    int[] ids = new int[n];
    boolean[] mask = new boolean[n];
    int[] pos = new int[n];
    int off = 0;
    int loss = 0;
    boolean truncated = false;
    StringBuilder members = new StringBuilder();
    for (PreparedRow r : rows) {
      System.arraycopy(r.inputIds(), 0, ids, off, r.numTokens());
      System.arraycopy(r.lossMask(), 0, mask, off, r.numTokens());
      System.arraycopy(r.positionIds(), 0, pos, off, r.numTokens());
      off += r.numTokens();
      loss += r.numLossTokens();
      truncated |= r.truncated();
      members.append(r.id()).append(',');
    }
    try {
      byte[] h = MessageDigest.getInstance("SHA-256").digest(members.toString().getBytes(StandardCharsets.UTF_8));
      String id = "packed-" + HexFormat.of().formatHex(h, 0, 16);
      PreparedRow first = rows.get(0);
      return new PreparedRow(id, "", first.lang(), first.split(), ids, mask, pos, n, loss, truncated);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
