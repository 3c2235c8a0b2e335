package ai.lathe.model.io;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/** {@link OutputGuard.Store} on the local file system (java.nio). */
public final class LocalStore implements OutputGuard.Store {
  public static final LocalStore INSTANCE = new LocalStore();

  private LocalStore() {}

  /** Absolute and normalised, with the symlinks of its longest existing prefix resolved. */
  public static Path real(Path p) throws IOException {
    Path abs = p.toAbsolutePath().normalize();
    Path existing = abs;
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    if (existing == null) {
      return abs;
    }
    return existing.toRealPath().resolve(existing.relativize(abs)).normalize();
  }

  @Override
  public String qualify(String path) throws IOException {
    return real(Path.of(path)).toString();
  }

  @Override
  public OutputGuard.Entry stat(String path) throws IOException {
    Path p = Path.of(path);
    if (!Files.exists(p)) {
      return null;
    }
    if (Files.isDirectory(p)) {
      Set<String> names = new TreeSet<>();
      try (Stream<Path> s = Files.list(p)) {
        s.forEach(c -> names.add(c.getFileName().toString()));
      }
      return new OutputGuard.Entry(true, names, null);
    }
    String first = null;
    if (Files.isRegularFile(p) && Files.isReadable(p)) {
      try (var r = Files.newBufferedReader(p, StandardCharsets.UTF_8)) {
        char[] buf = new char[1 << 16];
        int n = r.read(buf);
        String head = n <= 0 ? "" : new String(buf, 0, n);
        int nl = head.indexOf('\n');
        first = nl >= 0 ? head.substring(0, nl) : head;
      } catch (IOException e) {
        first = null; // unreadable as text: not a scores file
      }
    }
    return new OutputGuard.Entry(false, Set.of(), first);
  }

  @Override
  public boolean createNew(String path, String content) throws IOException {
    try {
      Files.writeString(Path.of(path), content, StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW,
          StandardOpenOption.WRITE);
      return true;
    } catch (FileAlreadyExistsException e) {
      return false;
    } catch (NoSuchFileException e) {
      Path parent = Path.of(path).getParent();
      Files.createDirectories(parent);
      return createNew(path, content);
    }
  }

  @Override
  public String read(String path) throws IOException {
    try {
      return Files.readString(Path.of(path), StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      return null;
    }
  }

  @Override
  public void delete(String path) throws IOException {
    AtomicDir.deleteTree(Path.of(path));
  }

  @Override
  public void rename(String from, String to) throws IOException {
    Files.move(Path.of(from), Path.of(to), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }
}
