package ai.lathe.model.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Content fingerprints for provenance records. */
public final class Hashing {
  private Hashing() {}

  public static String sha256(Path f) throws IOException {
    try (InputStream in = Files.newInputStream(f)) {
      return sha256(in);
    }
  }

  /** SHA-256 (hex) of a stream's remaining bytes; the caller closes it. */
  public static String sha256(InputStream in) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] buf = new byte[1 << 16];
    int n;
    while ((n = in.read(buf)) > 0) {
      md.update(buf, 0, n);
    }
    return HexFormat.of().formatHex(md.digest());
  }
}
