package ai.lathe.model.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
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
    Path parent = abs.getParent();
    Files.createDirectories(parent);
    String tag = UUID.randomUUID().toString().substring(0, 8);
    Path tmp = parent.resolve("." + abs.getFileName() + ".tmp-" + tag);
    Files.createDirectory(tmp);
    try {
      writer.write(tmp);
    } catch (IOException | RuntimeException | Error e) {
      deleteTree(tmp);
      throw e;
    }
    Path old = null;
    if (Files.exists(abs)) {
      old = parent.resolve("." + abs.getFileName() + ".old-" + tag);
      move(abs, old);
    }
    try {
      move(tmp, abs);
    } catch (IOException e) {
      if (old != null) {
        move(old, abs);
      }
      deleteTree(tmp);
      throw e;
    }
    if (old != null) {
      deleteTree(old);
    }
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException | FileAlreadyExistsException e) {
      Files.move(from, to);
    }
  }

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
