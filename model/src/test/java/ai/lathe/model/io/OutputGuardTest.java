package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputGuardTest {
  static final LocalStore FS = LocalStore.INSTANCE;

  /** A hash of every path, kind and content under dir: equal before and after means nothing changed. */
  public static String treeHash(Path dir) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted().toList()) {
        md.update(dir.relativize(p).toString().getBytes(StandardCharsets.UTF_8));
        md.update(Files.isDirectory(p) ? new byte[] {1} : Files.readAllBytes(p));
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  static OutputGuard.Spec spec(Path out, OutputGuard.Kind kind, boolean overwrite, Path... inputs) {
    return new OutputGuard.Spec("test", out.toString(), kind, overwrite,
        Stream.of(inputs).map(p -> OutputGuard.Input.of("in", p.toString())).toList());
  }

  static Path model(Path dir) throws Exception {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\"}");
    Files.write(dir.resolve("model.safetensors"), new byte[] {1, 2, 3, 4});
    Files.writeString(dir.resolve("tokenizer.json"), "{}");
    return dir;
  }

  @Test
  void overlapIsByWholePathComponents() {
    assertEquals("equals", OutputGuard.overlap("/a/b", "/a/b"));
    assertEquals("contains", OutputGuard.overlap("/a", "/a/b/c"));
    assertEquals("lies inside", OutputGuard.overlap("/a/b/c", "/a/b"));
    assertNull(OutputGuard.overlap("/a/bc", "/a/b"));
    assertNull(OutputGuard.overlap("/a/b", "/a/bc"));
    assertEquals("contains", OutputGuard.overlap("/", "/x"));
    assertEquals("contains", OutputGuard.overlap("hdfs://nn:8020/d", "hdfs://nn:8020/d/x"));
  }

  @Test
  void outputOverlappingAnInputIsRefusedThroughSymlinksAndDotDot(@TempDir Path tmp) throws Exception {
    Path m = model(tmp.resolve("models/base"));
    Files.createSymbolicLink(tmp.resolve("link"), tmp.resolve("models"));
    String before = treeHash(tmp.resolve("models"));
    for (Path out : List.of(m, tmp.resolve("link/base"), tmp.resolve("models/x/../base"), tmp.resolve("models"),
        tmp.resolve("link/base/adapter"))) {
      var e = assertThrows(OutputGuard.Refused.class,
          () -> OutputGuard.acquire(FS, spec(out, OutputGuard.Kind.ADAPTER, true, m)), out.toString());
      assertTrue(e.getMessage().contains(m.toRealPath().toString()), e.getMessage());
    }
    assertEquals(before, treeHash(tmp.resolve("models")));
    OutputGuard.check(FS, spec(tmp.resolve("models-out"), OutputGuard.Kind.ADAPTER, false, m)); // a sibling is fine
  }

  @Test
  void anExistingOutputIsReplacedOnlyWhenItIsTheSameKind(@TempDir Path tmp) throws Exception {
    Path file = tmp.resolve("file");
    Files.writeString(file, "precious");
    Path other = Files.createDirectories(tmp.resolve("other"));
    Files.writeString(other.resolve("notes.txt"), "precious");
    Path prepared = Files.createDirectories(tmp.resolve("prepared"));
    Files.writeString(prepared.resolve("_SUCCESS"), "");
    Files.writeString(prepared.resolve("manifest.json"), "{}");
    Path adapter = Files.createDirectories(tmp.resolve("adapter"));
    Files.writeString(adapter.resolve("adapter_config.json"), "{}");
    Files.writeString(adapter.resolve("lathe-run.json"), "{}");
    Path merged = Files.createDirectories(tmp.resolve("merged"));
    Files.writeString(merged.resolve("adapter_config.json"), "{}");
    Files.writeString(merged.resolve("lathe-merge.json"), "{}");
    Path model = model(tmp.resolve("model"));
    for (Path p : List.of(file, other, adapter, merged, model)) {
      var e = assertThrows(OutputGuard.Refused.class,
          () -> OutputGuard.check(FS, spec(p, OutputGuard.Kind.PREPARED, false)), p.toString());
      assertTrue(e.getMessage().contains("overwrite") && e.getMessage().contains(p.toString()), e.getMessage());
    }
    assertThrows(OutputGuard.Refused.class, () -> OutputGuard.check(FS, spec(merged, OutputGuard.Kind.ADAPTER, false)));
    assertThrows(OutputGuard.Refused.class, () -> OutputGuard.check(FS, spec(model, OutputGuard.Kind.MODEL, false)));
    OutputGuard.check(FS, spec(prepared, OutputGuard.Kind.PREPARED, false));
    OutputGuard.check(FS, spec(adapter, OutputGuard.Kind.ADAPTER, false));
    OutputGuard.check(FS, spec(merged, OutputGuard.Kind.MERGED_ADAPTER, false));
    OutputGuard.check(FS, spec(Files.createDirectories(tmp.resolve("empty")), OutputGuard.Kind.ADAPTER, false));
    OutputGuard.check(FS, spec(other, OutputGuard.Kind.PREPARED, true)); // overwrite: true
    Path scores = tmp.resolve("scores.jsonl");
    Files.writeString(scores, "{\"prompt\": \"a\", \"logprob\": -1.5, \"num_tokens\": 3}\n");
    OutputGuard.check(FS, spec(scores, OutputGuard.Kind.SCORES, false));
    assertThrows(OutputGuard.Refused.class, () -> OutputGuard.check(FS, spec(file, OutputGuard.Kind.SCORES, false)));
    assertEquals("precious", Files.readString(file));
  }

  @Test
  void aLockOfALiveProcessIsRefusedNamingItsOwnerAndAge(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("out");
    Path lock = tmp.resolve(".out.lathe-lock");
    // this JVM is alive: a lock with its pid (not taken through OutputGuard) is another run's
    Files.writeString(lock, "{\"pid\": " + ProcessHandle.current().pid() + ", \"host\": \""
        + OutputGuard.Owner.thisHost() + "\", \"start\": " + (System.currentTimeMillis() - 65_000)
        + ", \"command\": \"sft\"}");
    String before = treeHash(tmp);
    var e = assertThrows(OutputGuard.Refused.class,
        () -> OutputGuard.acquire(FS, spec(out, OutputGuard.Kind.ADAPTER, false)));
    assertTrue(e.getMessage().contains("locked by pid " + ProcessHandle.current().pid()), e.getMessage());
    assertTrue(e.getMessage().contains("'sft'") && e.getMessage().contains("0h01m0"), e.getMessage());
    assertEquals(before, treeHash(tmp));
    // a lock of another host cannot be checked: refused too, telling how to clear it
    Files.writeString(lock, "{\"pid\": 1, \"host\": \"elsewhere\", \"start\": 0, \"command\": \"prep\"}");
    e = assertThrows(OutputGuard.Refused.class, () -> OutputGuard.acquire(FS, spec(out, OutputGuard.Kind.ADAPTER, false)));
    assertTrue(e.getMessage().contains("elsewhere") && e.getMessage().contains("delete the lock"), e.getMessage());
  }

  @Test
  void aStaleLockIsTakenOverAndTheLockIsReleasedAtClose(@TempDir Path tmp) throws Exception {
    Process gone = new ProcessBuilder("true").start();
    gone.waitFor();
    Path out = tmp.resolve("out");
    Path lock = tmp.resolve(".out.lathe-lock");
    Files.writeString(lock, "{\"pid\": " + gone.pid() + ", \"host\": \"" + OutputGuard.Owner.thisHost()
        + "\", \"start\": 0, \"command\": \"sft\"}");
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    OutputGuard.Lease lease;
    try {
      lease = OutputGuard.acquire(FS, spec(out, OutputGuard.Kind.ADAPTER, false));
    } finally {
      System.setErr(err);
    }
    assertTrue(buf.toString(StandardCharsets.UTF_8).contains("stale lock"), buf.toString(StandardCharsets.UTF_8));
    assertTrue(Files.readString(lock).contains("\"pid\":" + ProcessHandle.current().pid()));
    // held by this run now: a second acquire of this JVM re-enters, and only the outer close releases
    try (OutputGuard.Lease inner = OutputGuard.acquire(FS, spec(out, OutputGuard.Kind.ADAPTER, false))) {
      assertTrue(Files.exists(lock));
    }
    assertTrue(Files.exists(lock));
    lease.close();
    assertFalse(Files.exists(lock));
  }

  @Test
  void leftoversOfKilledWritesAreClearedAndAnInterruptedCommitIsRolledBack(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("out");
    Files.createDirectories(tmp.resolve(".out.tmp-1234abcd/data"));
    Files.createDirectories(tmp.resolve(".out.staging-5678"));
    Path old = Files.createDirectories(tmp.resolve(".out.old-9abc"));
    Files.writeString(old.resolve("adapter_config.json"), "{}");
    Files.writeString(old.resolve("lathe-run.json"), "{}");
    Files.createDirectories(tmp.resolve(".other.tmp-1")); // another output's: not ours to touch
    try (OutputGuard.Lease l = OutputGuard.acquire(FS, spec(out, OutputGuard.Kind.ADAPTER, false))) {
      assertEquals(Set.of("out", ".other.tmp-1", ".out.lathe-lock"), Set.copyOf(names(tmp)));
      assertTrue(Files.exists(out.resolve("lathe-run.json")), "the previous output was put back");
    }
  }

  static List<String> names(Path dir) throws Exception {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).toList();
    }
  }

  /** Runs a command through the launcher's dispatch: its exit code and stderr. */
  static Object[] dispatch(String... argv) {
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      int code = Main.dispatch(argv, Main.COMMANDS);
      return new Object[] {code, buf.toString(StandardCharsets.UTF_8)};
    } finally {
      System.setErr(err);
    }
  }

  static void assertRefused(Object[] r, String... mentions) {
    assertEquals(2, r[0], (String) r[1]);
    String err = (String) r[1];
    assertEquals(1, err.lines().count(), err);
    for (String m : mentions) {
      assertTrue(err.contains(m), err + " should name " + m);
    }
  }

  @Test
  void localCommandsRefuseOutputsThatWouldDestroyTheirInputs(@TempDir Path tmp) throws Exception {
    Path m = model(tmp.resolve("model")).toRealPath();
    Path data = tmp.resolve("rows.jsonl").toAbsolutePath();
    Files.writeString(data, "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
    String before = treeHash(tmp);
    assertRefused(dispatch("sft-local", "--set", "model=" + m, "--set", "data=" + data, "--set", "output=" + m),
        m.toString());
    assertRefused(dispatch("sft-local", "--set", "model=" + m, "--set", "data=" + data, "--set",
        "output=" + tmp.toRealPath()), m.toString(), tmp.toRealPath().toString());
    assertRefused(dispatch("quantize", "--model", m.toString(), "--output", m.toString()), m.toString());
    assertRefused(dispatch("score", "--model", m.toString(), "--input", data.toString(), "--output", data.toString()),
        data.toRealPath().toString());
    assertRefused(dispatch("init-model", "--tokenizer", m.toString(), "--output", m.resolve("sub").toString()),
        m.toString());
    // an existing folder that is no Lathe output: init-model refuses it without --overwrite
    assertRefused(dispatch("init-model", "--vocab", "32", "--output", m.toString()), m.toString(), "overwrite");
    assertEquals(before, treeHash(tmp));
    assertFalse(Files.exists(tmp.resolve(".model.lathe-lock")), "the lock is released after a refusal");
  }
}
