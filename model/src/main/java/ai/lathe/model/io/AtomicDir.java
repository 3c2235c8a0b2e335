package ai.lathe.model.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Writes a folder atomically: the content goes to a hidden sibling, and only a complete folder
 * is renamed into place. A failure leaves the previous folder (if any) untouched.
 */
public final class AtomicDir {

  /** Writes the folder's content into the given temporary path. */
  @FunctionalInterface
  public interface Writer {
    void write(Path tmp) throws IOException;
  }

  private AtomicDir() {}

  public static void write(Path target, Writer writer) throws IOException {
    Path abs = target.toAbsolutePath().normalize();
    Files.createDirectories(abs.getParent());
    Path tmp = AtomicCommit.tempSibling(LOCAL, abs);
    Files.createDirectory(tmp);
    try {
      writer.write(tmp);
      commit(tmp, abs);
    } catch (IOException | RuntimeException | Error e) {
      deleteTree(tmp);
      throw e;
    }
  }

  /** Renames a complete local folder onto target ({@link AtomicCommit}). */
  public static void commit(Path tmp, Path target) throws IOException {
    AtomicCommit.commit(LOCAL, tmp, target);
  }

  /** The local file system for {@link AtomicCommit}. */
  public static final AtomicCommit.Fs<Path> LOCAL = new AtomicCommit.Fs<>() {
    @Override
    public boolean exists(Path p) {
      return Files.exists(p);
    }

    @Override
    public void rename(Path from, Path to) throws IOException {
      try {
        Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(from, to);
      }
    }

    @Override
    public void deleteTree(Path p) throws IOException {
      AtomicDir.deleteTree(p);
    }

    @Override
    public Path sibling(Path p, String name) {
      return p.resolveSibling(name);
    }

    @Override
    public String name(Path p) {
      return p.getFileName().toString();
    }
  };

  /** Writes one file atomically (temporary sibling, then rename). */
  public static void writeFile(Path target, Writer writer) throws IOException {
    Path abs = target.toAbsolutePath().normalize();
    Files.createDirectories(abs.getParent());
    Path tmp = abs.getParent().resolve("." + abs.getFileName() + ".tmp-" + UUID.randomUUID());
    try {
      writer.write(tmp);
      Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  public static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> s = Files.walk(p)) {
      s.sorted(Comparator.reverseOrder()).forEach(q -> {
        try {
          Files.delete(q);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
