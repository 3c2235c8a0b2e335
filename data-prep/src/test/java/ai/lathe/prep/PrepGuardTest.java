package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * prep never destroys data: an output over its inputs, over a file or an unrelated folder, an
 * empty input, a missing input and a locked output are refused before Spark starts, in one line,
 * with every byte on disk as it was.
 */
class PrepGuardTest extends SparkTestBase {
  static final String TOKENIZER = "../data/tokenizer/llama2/tokenizer.json";

  static String treeHash(Path dir) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted().toList()) {
        md.update(dir.relativize(p).toString().getBytes(StandardCharsets.UTF_8));
        md.update(Files.isDirectory(p) ? new byte[] {1} : Files.readAllBytes(p));
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  /** prep through its command-line entry: exit code, stderr, seconds. */
  static Object[] prep(String input, Path output, String... sets) {
    List<String> argv = new ArrayList<>(List.of("--set", "input=" + input, "--set", "output=" + output, "--set",
        "tokenizer=" + TOKENIZER, "--set", "format=alpaca"));
    for (String s : sets) {
      argv.add("--set");
      argv.add(s);
    }
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    long t0 = System.nanoTime();
    try {
      int code = JobMain.run("prep", argv.toArray(new String[0]), PrepJob.USAGE, PrepJob::outputs, PrepJob::run);
      return new Object[] {code, buf.toString(StandardCharsets.UTF_8), (System.nanoTime() - t0) / 1e9};
    } finally {
      System.setErr(err);
    }
  }

  static void assertOneLine(Object[] r, int code, String... mentions) {
    String err = (String) r[1];
    assertEquals(code, r[0], err);
    assertEquals(1, err.lines().count(), err);
    for (String m : mentions) {
      assertTrue(err.contains(m), err + " should name " + m);
    }
    assertTrue((double) r[2] < 1.0, "refused before Spark starts, took " + r[2] + " s");
  }

  static Path input(Path dir) throws IOException {
    Files.createDirectories(dir);
    return Files.writeString(dir.resolve("rows.jsonl"),
        "{\"instruction\": \"Say hi\", \"output\": \"Hi there\", \"lang\": \"en\"}\n");
  }

  @Test
  void anOutputOverItsInputIsRefused(@TempDir Path tmp) throws Exception {
    Path in = input(tmp.resolve("raw"));
    String before = treeHash(tmp);
    Path real = tmp.toRealPath();
    assertOneLine(prep(in.toString(), tmp.resolve("raw")), 2, real.resolve("raw").toString(), "contains");
    assertOneLine(prep(in.toString(), in), 2, "equals");
    assertOneLine(prep(tmp.resolve("raw/*.jsonl").toString(), tmp), 2, real.toString(), "rows.jsonl");
    assertOneLine(prep(tmp.resolve("raw").toString(), tmp.resolve("raw/out")), 2, "lies inside");
    // the tokenizer is an input too
    Path tok = Files.createDirectories(tmp.resolve("tok"));
    Files.copy(Path.of(TOKENIZER), tok.resolve("tokenizer.json"));
    String withTok = treeHash(tmp);
    assertOneLine(prep(in.toString(), tok, "tokenizer=" + tok), 2, "tokenizer");
    assertEquals(withTok, treeHash(tmp));
    Files.delete(tok.resolve("tokenizer.json"));
    Files.delete(tok);
    assertEquals(before, treeHash(tmp));
  }

  @Test
  void aFileOrAnUnrelatedFolderIsNotReplacedWithoutOverwrite(@TempDir Path tmp) throws Exception {
    Path in = input(tmp.resolve("raw"));
    Path file = Files.writeString(tmp.resolve("notes.txt"), "precious");
    Path folder = Files.createDirectories(tmp.resolve("photos"));
    Files.writeString(folder.resolve("cat.jpg"), "precious");
    String before = treeHash(tmp);
    assertOneLine(prep(in.toString(), file), 2, file.toRealPath().toString(), "overwrite");
    assertOneLine(prep(in.toString(), folder), 2, folder.toRealPath().toString(), "overwrite");
    assertOneLine(prep(in.toString(), file.resolve("sub")), 2, "parent is a file");
    assertEquals(before, treeHash(tmp));
  }

  @Test
  void missingAndEmptyInputsFailFastAndKeepThePreviousOutput(@TempDir Path tmp) throws Exception {
    Path in = input(tmp.resolve("raw"));
    Path out = tmp.resolve("prepared");
    PrepJob.run(spark, PrepJobTest.config(in.toString(), out)); // a good previous output
    Path empty = Files.writeString(tmp.resolve("raw/empty.jsonl"), "");
    String before = treeHash(tmp);
    assertOneLine(prep(tmp.resolve("nope.jsonl").toString(), out), 1, "nope.jsonl", "not found");
    assertOneLine(prep(empty.toString(), out), 1, "empty.jsonl", "allow_empty");
    assertEquals(before, treeHash(tmp));
    // rows that all fail validation leave nothing to write: refused too, after Spark counted them
    Path bad = Files.writeString(tmp.resolve("bad.jsonl"), "{\"instruction\": \"no output\"}\nnot json\n");
    String before2 = treeHash(tmp);
    var e = assertThrows(IllegalArgumentException.class, () -> PrepJob.run(spark,
        PrepJobTest.config(bad.toString(), out, "max_reject_fraction=1.0")));
    assertTrue(e.getMessage().contains("no rows to write"), e.getMessage());
    assertEquals(before2, treeHash(tmp));
    PrepJob.run(spark, PrepJobTest.config(bad.toString(), out, "max_reject_fraction=1.0", "allow_empty=true"));
    assertTrue(Files.readString(out.resolve("manifest.json")).contains("\"output_rows\" : 0"));
  }

  @Test
  void aLockedOutputIsRefusedNamingTheOwner(@TempDir Path tmp) throws Exception {
    Path in = input(tmp.resolve("raw"));
    Path out = tmp.resolve("prepared");
    Files.writeString(tmp.resolve(".prepared.lathe-lock"), "{\"pid\": " + ProcessHandle.current().pid()
        + ", \"host\": \"" + Files.readString(Path.of("/proc/sys/kernel/hostname")).strip() + "\", \"start\": "
        + System.currentTimeMillis() + ", \"command\": \"prep\"}");
    String before = treeHash(tmp);
    assertOneLine(prep(in.toString(), out), 2, "locked by pid " + ProcessHandle.current().pid(), "'prep'");
    assertEquals(before, treeHash(tmp));
  }

  @Test
  void aFullDiskNamesThePathBeingWritten() {
    Exception e = new RuntimeException("Job aborted.\n\tat x.y", new IOException("No space left on device"));
    String line = JobMain.oneLine(e, "/data/prepared");
    assertTrue(line.contains("/data/prepared") && line.contains("No space left on device"), line);
    assertEquals(1, line.lines().count());
  }
}
