package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A torn newest checkpoint is skipped (naming its real path) and the run resumes from the newest intact one. */
class CheckpointsTest {
  static final String[] NAMES = {"a", "b"};
  static final int[] SIZES = {3, 2};
  static final Configuration CONF = new Configuration();

  static AdapterState state(float x, long step) {
    float[][] p = {{x, x, x}, {x, x}};
    float[][] m = {{0.1f, 0.1f, 0.1f}, {0.1f, 0.1f}};
    float[][] v = {{0.2f, 0.2f, 0.2f}, {0.2f, 0.2f}};
    return new AdapterState(NAMES, p, m, v, step);
  }

  static List<ObjectNode> metrics(int rounds) {
    ObjectMapper om = new ObjectMapper();
    return java.util.stream.IntStream.range(0, rounds).mapToObj(r -> om.createObjectNode().put("round", r)
        .put("train_loss", 2.0 - r)).toList();
  }

  /** latest() with stderr captured: the checkpoint and the warnings. */
  static Object[] latest(Path dir) throws Exception {
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      return new Object[] {Checkpoints.latest(dir.toString(), NAMES, SIZES, "fp", CONF),
          buf.toString(StandardCharsets.UTF_8)};
    } finally {
      System.setErr(err);
    }
  }

  static void writeTwo(Path dir, AdapterState newest) throws Exception {
    Checkpoints.write(dir.toString(), 0, state(1f, 2), null, "fp", metrics(1), CONF);
    Checkpoints.write(dir.toString(), 1, newest, null, "fp", metrics(2), CONF);
  }

  static void assertResumesFromRoundZero(Path dir, String tornFile) throws Exception {
    Object[] r = latest(dir);
    Checkpoints.Loaded ck = (Checkpoints.Loaded) r[0];
    String err = (String) r[1];
    assertEquals(0, ck.round(), err);
    assertEquals(1f, ck.state().params()[0][0]);
    assertEquals(2, ck.state().step());
    assertEquals(1, ck.metrics().size(), "the metrics lines up to that checkpoint");
    assertTrue(err.contains(dir.resolve("round-000001").resolve(tornFile).toString()) && err.contains("torn"), err);
    assertFalse(err.contains("lathe-ckpt-read"), "names the checkpoint, not a temporary copy: " + err);
  }

  @Test
  void anIntactCheckpointReadsBackWithItsMetrics(@TempDir Path tmp) throws Exception {
    writeTwo(tmp, state(2f, 4));
    Checkpoints.Loaded ck = (Checkpoints.Loaded) latest(tmp)[0];
    assertEquals(1, ck.round());
    assertEquals(2f, ck.state().params()[1][1]);
    assertEquals(List.of(2.0, 1.0), ck.metrics().stream().map(l -> l.get("train_loss").asDouble()).toList());
  }

  @Test
  void truncatedParamsAreSkipped(@TempDir Path tmp) throws Exception {
    writeTwo(tmp, state(2f, 4));
    Path p = tmp.resolve("round-000001/params.safetensors");
    byte[] b = Files.readAllBytes(p);
    Files.deleteIfExists(tmp.resolve("round-000001/.params.safetensors.crc"));
    Files.write(p, java.util.Arrays.copyOf(b, b.length - 5));
    assertResumesFromRoundZero(tmp, "params.safetensors");
  }

  @Test
  void anEmptyStateJsonIsSkipped(@TempDir Path tmp) throws Exception {
    writeTwo(tmp, state(2f, 4));
    Files.deleteIfExists(tmp.resolve("round-000001/.state.json.crc"));
    Files.writeString(tmp.resolve("round-000001/state.json"), "");
    assertResumesFromRoundZero(tmp, "state.json");
  }

  @Test
  void nonFiniteValuesAreSkipped(@TempDir Path tmp) throws Exception {
    writeTwo(tmp, state(Float.NaN, 4));
    assertResumesFromRoundZero(tmp, "params.safetensors");
  }

  @Test
  void tensorsOfTheWrongSizeAreSkipped(@TempDir Path tmp) throws Exception {
    AdapterState wrong = new AdapterState(NAMES, new float[][] {{1f}, {1f, 1f}}, null, null, 4);
    writeTwo(tmp, wrong);
    assertResumesFromRoundZero(tmp, "params.safetensors");
  }

  @Test
  void leftoversOfKilledWritesAreRemovedAndNoCheckpointMeansNone(@TempDir Path tmp) throws Exception {
    Files.createDirectories(tmp.resolve(".round-000003.tmp-1234abcd"));
    Files.createDirectories(tmp.resolve(".round-000002.old-99"));
    Object[] r = latest(tmp);
    assertNull(r[0]);
    try (var s = Files.list(tmp)) {
      assertEquals(0, s.count(), (String) r[1]);
    }
  }
}
