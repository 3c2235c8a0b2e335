package ai.lathe.model.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The rules every command that writes follows before it does any work:
 * <ul>
 *   <li>the output never equals, contains or lies inside one of its inputs (after resolving
 *       symlinks and {@code ..}, on any file system the {@link Store} qualifies);</li>
 *   <li>an existing output is replaced only when it holds a committed Lathe output of the same
 *       kind (recognised by its marker files), or is an empty folder; anything else needs
 *       {@code overwrite: true};</li>
 *   <li>one run per output: a sibling lock file {@code .<name>.lathe-lock}, created atomically,
 *       names its owner; a lock of a dead process on this host is taken over;</li>
 *   <li>leftovers of killed writes beside the output ({@code .<name>.tmp-*}, {@code .staging-*}) are
 *       removed under the lock, and a previous output moved aside ({@code .old-*}) by a commit
 *       killed half-way is put back.</li>
 * </ul>
 * The file system is behind {@link Store}: {@link LocalStore} here, a Hadoop one in data-prep.
 */
public final class OutputGuard {
  private OutputGuard() {}

  /** A refused output: nothing was read or written; commands exit with {@link #EXIT}. */
  public static final class Refused extends IllegalArgumentException {
    public Refused(String msg) {
      super(msg);
    }
  }

  /** Exit code of a refused output. */
  public static final int EXIT = 2;

  /** What a committed Lathe output is, recognised by the files it always holds. */
  public enum Kind {
    PREPARED("prepared data (_SUCCESS + manifest.json)", Set.of("_SUCCESS", "manifest.json")),
    ADAPTER("trained adapter (adapter_config.json + lathe-run.json)", Set.of("adapter_config.json", "lathe-run.json")),
    TRAINED_MODEL("fully trained model (config.json + lathe-run.json)", Set.of("config.json", "lathe-run.json")),
    MERGED_ADAPTER("merged adapter (adapter_config.json + lathe-merge.json)",
        Set.of("adapter_config.json", "lathe-merge.json")),
    MERGED_MODEL("merged model (config.json + lathe-merge.json)", Set.of("config.json", "lathe-merge.json")),
    QUANTIZED_MODEL("quantised model (config.json + lathe-quantize.json)", Set.of("config.json", "lathe-quantize.json")),
    EVAL("evaluation (summary.json + lathe-eval.json)", Set.of("summary.json", "lathe-eval.json")),
    /** A model folder without a Lathe marker (init-model): never replaced without overwrite. */
    MODEL("model folder", null),
    /** A scored JSON-lines file: its first line has logprob and num_tokens. */
    SCORES("scores file (JSON lines with logprob, num_tokens)", null),
    /** A generations JSON-lines file: its first line has completion and finish_reason. */
    GENERATIONS("generations file (JSON lines with completion, finish_reason)", null);

    public final String description;
    final Set<String> markers;

    Kind(String description, Set<String> markers) {
      this.description = description;
      this.markers = markers;
    }
  }

  /** The kind of committed output a folder with these file names holds, or null. */
  public static Kind kindOf(Set<String> names) {
    Kind best = null;
    for (Kind k : Kind.values()) {
      if (k.markers != null && names.containsAll(k.markers)
          && (best == null || k.markers.size() > best.markers.size())) {
        best = k;
      }
    }
    // an adapter folder that also has lathe-merge.json is a merge, not a training run
    return best == Kind.ADAPTER && names.contains("lathe-merge.json") ? Kind.MERGED_ADAPTER : best;
  }

  /** One input of a command; mayEqual: the output may be this very path (an atomic rewrite in place). */
  public record Input(String label, String path, boolean mayEqual) {
    public Input {
      Objects.requireNonNull(label);
      Objects.requireNonNull(path);
    }

    public static Input of(String label, String path) {
      return new Input(label, path, false);
    }
  }

  /** What a command writes and reads. alsoWritten: further paths it writes (checkpoints), kept off the inputs too. */
  public record Spec(String command, String output, Kind kind, boolean overwrite, List<Input> inputs,
      List<String> alsoWritten) {
    public Spec {
      Objects.requireNonNull(command);
      Objects.requireNonNull(output, "output");
      Objects.requireNonNull(kind);
      inputs = List.copyOf(inputs);
      alsoWritten = List.copyOf(alsoWritten);
    }

    public Spec(String command, String output, Kind kind, boolean overwrite, List<Input> inputs) {
      this(command, output, kind, overwrite, inputs, List.of());
    }
  }

  /** An existing path: a folder with its entries' names, or a file with its first line. */
  public record Entry(boolean directory, Set<String> names, String firstLine) {}

  /** The file operations the guard needs; paths are the store's qualified strings ('/'-separated). */
  public interface Store {
    /** Absolute, normalised, symlinks resolved, scheme-qualified where the store has schemes. */
    String qualify(String path) throws IOException;

    /** The path's entry, or null when nothing is there. */
    Entry stat(String path) throws IOException;

    /** Creates a file with the content only if nothing is there (atomically); false if something is. */
    boolean createNew(String path, String content) throws IOException;

    /** A file's content, or null when it is missing. */
    String read(String path) throws IOException;

    void delete(String path) throws IOException;

    void rename(String from, String to) throws IOException;
  }

  /** How two qualified paths overlap: "equals", "contains" (a holds b), "lies inside" (a within b), or null. */
  public static String overlap(String a, String b) {
    if (a.equals(b)) {
      return "equals";
    }
    if (b.startsWith(a.endsWith("/") ? a : a + "/")) {
      return "contains";
    }
    if (a.startsWith(b.endsWith("/") ? b : b + "/")) {
      return "lies inside";
    }
    return null;
  }

  /**
   * Refuses (before any work) an output that overlaps an input or the output's other written
   * paths, or an existing output that is not a committed output of the same kind.
   */
  public static void check(Store store, Spec spec) throws IOException {
    String out = store.qualify(spec.output());
    for (Input in : spec.inputs()) {
      String q = store.qualify(in.path());
      String o = overlap(out, q);
      if (o != null && !(in.mayEqual() && o.equals("equals"))) {
        throw new Refused(spec.command() + ": output " + out + " " + o + " the input " + in.label() + " " + q
            + "; an output must never equal, contain or lie inside an input (nothing was changed)");
      }
      for (String w : spec.alsoWritten()) {
        String qw = store.qualify(w);
        String ow = overlap(qw, q);
        if (ow != null) {
          throw new Refused(spec.command() + ": " + qw + " (written by this run) " + ow + " the input " + in.label()
              + " " + q + " (nothing was changed)");
        }
      }
    }
    Entry e = store.stat(out);
    if (e == null || spec.overwrite()) {
      return;
    }
    if (e.directory() && e.names().isEmpty()) {
      return; // an empty folder holds nothing to lose
    }
    Kind found = e.directory() ? kindOf(e.names()) : scoresLine(e.firstLine()) ? Kind.SCORES
        : lineHas(e.firstLine(), "completion", "finish_reason") ? Kind.GENERATIONS : null;
    if (found != spec.kind() || spec.kind() == Kind.MODEL) {
      throw new Refused(spec.command() + ": output " + out + " already exists and holds "
          + (found == null ? (e.directory() ? "a folder that is no Lathe output" : "a file that is no Lathe output")
              : "a " + found.description)
          + ", not a committed " + spec.kind().description + "; refusing to replace it (set overwrite: true, or"
          + " --overwrite, to replace it; nothing was changed)");
    }
  }

  static boolean scoresLine(String line) {
    return lineHas(line, "logprob", "num_tokens");
  }

  /** Whether line is a JSON object with every one of the fields. */
  static boolean lineHas(String line, String... fields) {
    if (line == null || line.isBlank()) {
      return false;
    }
    try {
      JsonNode j = new ObjectMapper().readTree(line);
      if (!j.isObject()) {
        return false;
      }
      for (String f : fields) {
        if (!j.has(f)) {
          return false;
        }
      }
      return true;
    } catch (IOException ex) {
      return false;
    }
  }

  /** A held lock: close() releases it (only if it is still this run's). */
  public static final class Lease implements AutoCloseable {
    private final Store store;
    private final String lock;
    private final String token;
    private boolean closed;

    Lease(Store store, String lock, String token) {
      this.store = store;
      this.lock = lock;
      this.token = token;
    }

    public String lockPath() {
      return lock;
    }

    @Override
    public synchronized void close() throws IOException {
      if (closed) {
        return;
      }
      closed = true;
      if (HELD.merge(lock, -1, Integer::sum) > 0) {
        return; // still held by an outer lease of this JVM
      }
      HELD.remove(lock);
      String now = store.read(lock);
      if (now != null && now.contains(token)) {
        store.delete(lock);
      }
    }
  }

  /** Locks this JVM holds, with their counts (a job run inside a pipeline re-enters its lock). */
  private static final Map<String, Integer> HELD = new ConcurrentHashMap<>();

  /** The lock file of a qualified output path. */
  public static String lockOf(String out) {
    int slash = out.lastIndexOf('/');
    return out.substring(0, slash + 1) + "." + out.substring(slash + 1) + ".lathe-lock";
  }

  /**
   * Checks the spec, takes the output's lock and clears leftovers of killed writes. A lock of a
   * live process (or of another host) is refused naming its owner and age; a lock of a process of
   * this host that is gone is taken over with a warning.
   */
  public static Lease acquire(Store store, Spec spec) throws IOException {
    check(store, spec);
    String out = store.qualify(spec.output());
    String lock = lockOf(out);
    String token = Long.toString(System.nanoTime(), 36) + "-" + Long.toString(Double.doubleToLongBits(Math.random()), 36);
    if (HELD.computeIfPresent(lock, (k, n) -> n + 1) != null) {
      return new Lease(store, lock, token);
    }
    Owner me = Owner.current(spec.command(), token);
    Entry parent = store.stat(out.substring(0, Math.max(1, out.lastIndexOf('/'))));
    if (parent != null && !parent.directory()) {
      throw new Refused(spec.command() + ": cannot write " + out + ": its parent is a file, not a folder");
    }
    for (int attempt = 0; ; attempt++) {
      if (store.createNew(lock, me.json())) {
        break;
      }
      String text = store.read(lock);
      Owner owner = Owner.parse(text);
      if (attempt == 0 && owner != null && owner.staleOnThisHost()) {
        System.err.printf("lathe %s: warning: taking over the stale lock %s of %s (process gone)%n", spec.command(), lock,
            owner.describe());
        store.delete(lock);
        continue;
      }
      throw new Refused(spec.command() + ": output " + out + " is locked by " + (owner == null
          ? "an unreadable lock" : owner.describe()) + " (" + lock + "); another run is writing it"
          + (owner == null || !owner.host().equals(Owner.thisHost()) ? "; if it is gone, delete the lock" : ""));
    }
    HELD.put(lock, 1);
    try {
      clearLeftovers(store, out);
    } catch (IOException | RuntimeException ex) {
      new Lease(store, lock, token).close();
      throw ex;
    }
    return new Lease(store, lock, token);
  }

  /**
   * Under the lock no other run writes beside out: temporary and staging siblings are leftovers
   * of killed runs (removed); an .old- sibling with no out means a commit was killed between its
   * two renames, so the previous output is put back.
   */
  static void clearLeftovers(Store store, String out) throws IOException {
    int slash = out.lastIndexOf('/');
    String dir = out.substring(0, Math.max(1, slash));
    String name = out.substring(slash + 1);
    Entry d = store.stat(dir);
    if (d == null || !d.directory()) {
      return;
    }
    String prefix = "." + name + ".";
    for (String n : d.names().stream().sorted().toList()) {
      if (!n.startsWith(prefix)) {
        continue;
      }
      String rest = n.substring(prefix.length());
      String p = out.substring(0, slash + 1) + n;
      if (rest.startsWith("old-") && store.stat(out) == null) {
        System.err.printf("lathe: restoring %s from %s (a commit was interrupted)%n", out, p);
        store.rename(p, out);
      } else if (rest.startsWith("tmp-") || rest.startsWith("staging-") || rest.startsWith("old-")) {
        System.err.printf("lathe: removing %s (left by an interrupted run)%n", p);
        store.delete(p);
      }
    }
  }

  /** Who holds a lock. */
  record Owner(long pid, String host, long startMillis, String command, String token) {
    static Owner current(String command, String token) {
      return new Owner(ProcessHandle.current().pid(), thisHost(), System.currentTimeMillis(), command, token);
    }

    String json() {
      return new ObjectMapper().createObjectNode().put("pid", pid).put("host", host).put("start", startMillis)
          .put("started", Instant.ofEpochMilli(startMillis).toString()).put("command", command).put("token", token)
          .toString();
    }

    static Owner parse(String text) {
      if (text == null) {
        return null;
      }
      try {
        JsonNode j = new ObjectMapper().readTree(text);
        if (!j.has("pid") || !j.has("host")) {
          return null;
        }
        return new Owner(j.get("pid").asLong(), j.get("host").asText(), j.path("start").asLong(0),
            j.path("command").asText("?"), j.path("token").asText(""));
      } catch (IOException e) {
        return null;
      }
    }

    boolean staleOnThisHost() {
      return host.equals(thisHost()) && ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true);
    }

    String describe() {
      Duration age = Duration.ofMillis(Math.max(0, System.currentTimeMillis() - startMillis));
      return String.format("pid %d on %s ('%s', started %s, %dh%02dm%02ds ago)", pid, host, command,
          Instant.ofEpochMilli(startMillis), age.toHours(), age.toMinutesPart(), age.toSecondsPart());
    }

    static String thisHost() {
      try {
        // the kernel's name first: the same in every process of this host, and no DNS lookup
        java.nio.file.Path k = java.nio.file.Path.of("/proc/sys/kernel/hostname");
        if (java.nio.file.Files.isReadable(k)) {
          return java.nio.file.Files.readString(k).strip();
        }
        return java.net.InetAddress.getLocalHost().getHostName();
      } catch (IOException e) {
        return "localhost";
      }
    }
  }
}
