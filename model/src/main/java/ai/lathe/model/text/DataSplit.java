package ai.lathe.model.text;

import ai.lathe.model.text.ChatTemplate.Message;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.text.Normalizer;
import java.util.HexFormat;
import java.util.List;

/**
 * The train/validation split, in one place for prep and sft-local: a row's split is a pure
 * function of its content id (SHA-256 of roles and normalised contents), so the same
 * conversation lands in the same split whichever tool reads it, on every rerun, and when rows
 * are added.
 */
public final class DataSplit {
  public static final String TRAIN = "train";
  public static final String VALIDATION = "validation";

  private DataSplit() {}

  /** NFC, \r\n and \r to \n, runs of 3+ newlines to 2, stripped. */
  public static String normalize(String s) {
    String t = Normalizer.normalize(s, Normalizer.Form.NFC).replace("\r\n", "\n").replace('\r', '\n');
    return t.replaceAll("\n{3,}", "\n\n").strip();
  }

  /** SHA-256 over roles and contents, each followed by a NUL (first 16 bytes, hex): equal content, equal id. */
  public static String contentId(List<Message> ms) {
    MessageDigest md = sha256();
    for (Message m : ms) {
      md.update(m.role().getBytes(StandardCharsets.UTF_8));
      md.update((byte) 0);
      md.update(m.content().getBytes(StandardCharsets.UTF_8));
      md.update((byte) 0);
    }
    return HexFormat.of().formatHex(md.digest(), 0, 16);
  }

  /** The content id of the messages after {@link #normalize} (what prep stores as a row's id). */
  public static String normalizedContentId(List<Message> ms) {
    return contentId(ms.stream().map(m -> new Message(m.role(), normalize(m.content()))).toList());
  }

  /** validation when the first 7 bytes of SHA-256("split:" + contentId) fall below the fraction. */
  public static String split(String contentId, double valFraction) {
    return below("split:" + contentId, valFraction) ? VALIDATION : TRAIN;
  }

  /** Deterministic draw: the first 7 bytes of SHA-256(key) as a fraction in [0, 1), below {@code fraction}. */
  public static boolean below(String key, double fraction) {
    if (fraction <= 0) {
      return false;
    }
    byte[] h = sha256().digest(key.getBytes(StandardCharsets.UTF_8));
    long v = 0;
    for (int i = 0; i < 7; i++) {
      v = (v << 8) | (h[i] & 0xff);
    }
    return v / (double) (1L << 56) < fraction;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
