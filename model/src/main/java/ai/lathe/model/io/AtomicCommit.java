package ai.lathe.model.io;

import java.io.IOException;
import java.util.UUID;

/**
 * The one commit protocol of every Lathe output, local or on a Hadoop file system: a complete
 * folder written under a hidden temporary sibling ({@code .<name>.tmp-<tag>}) replaces the target
 * by renames only. The old target is moved aside ({@code .<name>.old-<tag>}) first and restored
 * when the second rename fails, so a failure at any point leaves either the old or the new output
 * in place (OutputGuard cleans the hidden leftovers of a killed process).
 */
public final class AtomicCommit {
  /** The file-system operations the protocol needs, over the file system's own path type. */
  public interface Fs<P> {
    boolean exists(P p) throws IOException;

    /** Renames from to to (to must not exist); throws when the file system refuses. */
    void rename(P from, P to) throws IOException;

    void deleteTree(P p) throws IOException;

    /** The path named {@code name} beside {@code p}. */
    P sibling(P p, String name);

    String name(P p);
  }

  private AtomicCommit() {}

  /** A fresh random tag for the hidden siblings of one write. */
  public static String tag() {
    return UUID.randomUUID().toString().substring(0, 8);
  }

  /** The name of the hidden temporary sibling a write of the output {@code name} goes to. */
  public static String tempName(String name, String tag) {
    return "." + name + ".tmp-" + tag;
  }

  /** The hidden temporary sibling a write of {@code target} goes to. */
  public static <P> P tempSibling(Fs<P> fs, P target) {
    return fs.sibling(target, tempName(fs.name(target), tag()));
  }

  /** Renames tmp onto target, keeping the old target aside until the new one is in place. */
  public static <P> void commit(Fs<P> fs, P tmp, P target) throws IOException {
    P old = null;
    if (fs.exists(target)) {
      old = fs.sibling(target, "." + fs.name(target) + ".old-" + tag());
      fs.rename(target, old);
    }
    try {
      fs.rename(tmp, target);
    } catch (IOException | RuntimeException e) {
      if (old != null) {
        fs.rename(old, target);
      }
      throw e;
    }
    if (old != null) {
      fs.deleteTree(old);
    }
  }
}
