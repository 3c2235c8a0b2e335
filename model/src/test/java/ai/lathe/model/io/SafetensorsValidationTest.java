package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One test per rule of the safetensors header validation (see SafetensorsHeader). */
class SafetensorsValidationTest {

  /** A file: 8-byte little-endian header length, the header as given, then the data. */
  static byte[] file(byte[] header, byte[] data) {
    ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    return b.putLong(header.length).put(header).put(data).array();
  }

  static Path write(Path tmp, String header, int dataBytes) throws IOException {
    Path f = tmp.resolve("t.safetensors");
    Files.write(f, file(header.getBytes(StandardCharsets.UTF_8), new byte[dataBytes]));
    return f;
  }

  static String refused(Path f) {
    IOException e = assertThrows(IOException.class, () -> Safetensors.open(f).close());
    assertTrue(e.getMessage().contains(f.toString()), "names the file: " + e.getMessage());
    return e.getMessage();
  }

  static String t(String name, String dtype, String shape, long begin, long end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + ","
        + end + "]}";
  }

  @Test
  void aProjectionPointingIntoTheEmbeddingsIsRefused(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("m.safetensors");
    Map<String, Safetensors.Tensor> ts = new LinkedHashMap<>();
    ts.put("model.embed_tokens.weight", new Safetensors.Tensor(new long[] {4, 4}, new float[16]));
    ts.put("model.layers.0.self_attn.q_proj.weight", new Safetensors.Tensor(new long[] {2, 4}, new float[8]));
    Safetensors.write(f, ts, "F32", Map.of());
    byte[] all = Files.readAllBytes(f);
    int hlen = (int) ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    String h = new String(all, 8, hlen, StandardCharsets.UTF_8);
    assertTrue(h.contains("[64,96]"), h);
    // same length: the projection now reads the embeddings' first 32 bytes, 32 bytes go unused
    byte[] bad = h.replace("[64,96]", "[0,32] ").getBytes(StandardCharsets.UTF_8);
    System.arraycopy(bad, 0, all, 8, hlen);
    Files.write(f, all);
    String m = refused(f);
    assertTrue(m.contains("overlap") && m.contains("q_proj") && m.contains("embed_tokens"), m);
  }

  @Test
  void overlapGapWrongSizeAndTrailingBytesAreRefused(@TempDir Path tmp) throws IOException {
    String m = refused(write(tmp, "{" + t("a", "F32", "[4]", 0, 16) + "," + t("b", "F32", "[4]", 8, 24) + "}", 24));
    assertTrue(m.contains("tensor 'b'") && m.contains("overlap tensor 'a'"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[4]", 0, 16) + "," + t("b", "F32", "[4]", 20, 36) + "}", 36));
    assertTrue(m.contains("tensor 'b'") && m.contains("gap of 4 bytes"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[4]", 4, 20) + "}", 20));
    assertTrue(m.contains("tensor 'a'") && m.contains("gap of 4 bytes"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[2,2]", 0, 8) + "}", 8));
    assertTrue(m.contains("tensor 'a'") && m.contains("needs 16 bytes") && m.contains("span 8"), m);
    m = refused(write(tmp, "{" + t("a", "BF16", "[2,2]", 0, 16) + "}", 16));
    assertTrue(m.contains("needs 8 bytes"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[4]", 0, 16) + "}", 20));
    assertTrue(m.contains("4 bytes after the end of the last tensor 'a'"), m);
    m = refused(write(tmp, "{}", 8));
    assertTrue(m.contains("8 bytes after") && m.contains("no tensors"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[4]", 0, 16) + "}", 12));
    assertTrue(m.contains("truncated") && m.contains("tensor 'a'"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[0]", 0, 0) + "," + t("b", "F32", "[1]", 4, 0) + "}", 4));
    assertTrue(m.contains("tensor 'b'"), m);
  }

  @Test
  void entriesMayBeListedInAnyOrderAndEmptyTensorsAreFine(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("t.safetensors");
    String h = "{\"__metadata__\":{\"format\":\"pt\"}," + t("late", "F32", "[1]", 4, 8) + "," + t("empty", "F32", "[0,3]", 0, 0)
        + "," + t("early", "F32", "[1]", 0, 4) + ",\"z\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[8,9],\"x\":1}}";
    ByteBuffer data = ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f).put((byte) 7);
    Files.write(f, file(h.getBytes(StandardCharsets.UTF_8), data.array()));
    try (Safetensors st = Safetensors.open(f)) {
      assertArrayEquals(new float[] {1.5f}, st.readFloats("early"));
      assertArrayEquals(new float[] {-2f}, st.readFloats("late"));
      assertEquals(0, st.readFloats("empty").length);
      assertArrayEquals(new byte[] {7}, st.readBytes("z"));
      assertEquals("pt", st.metadata().get("format"));
    }
    Files.write(f, file("{}".getBytes(StandardCharsets.UTF_8), new byte[0]));
    try (Safetensors st = Safetensors.open(f)) {
      assertTrue(st.entries().isEmpty());
    }
  }

  @Test
  void headerLengthMustBeSaneAndWithinTheFile(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("t.safetensors");
    byte[] ok = file("{}  ".getBytes(StandardCharsets.UTF_8), new byte[0]);
    for (long len : new long[] {-1L, 1L << 62, 100_000_001L, 0L, 5L}) {
      byte[] b = ok.clone();
      ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, len);
      Files.write(f, b);
      String m = refused(f);
      assertTrue(m.contains("declared length " + Long.toUnsignedString(len)), m);
    }
    Files.write(f, new byte[] {2, 0, 0});
    assertTrue(refused(f).contains("truncated"));
  }

  @Test
  void headerMustBeUtf8JsonObjectWithStringMetadata(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("t.safetensors");
    Files.write(f, file(new byte[] {'{', '"', (byte) 0xC3, (byte) 0x28, '"', ':', '1', '}'}, new byte[0]));
    assertTrue(refused(f).contains("not valid UTF-8"));
    assertTrue(refused(write(tmp, "[1, 2]", 0)).contains("start with '{'"));
    assertTrue(refused(write(tmp, "{\"a\":", 0)).contains("not valid JSON"));
    assertTrue(refused(write(tmp, "{} {}", 0)).contains("not valid JSON"));
    assertTrue(refused(write(tmp, "{}\0\0", 0)).contains("not valid JSON"));
    String m = refused(write(tmp, "{" + t("a", "F32", "[1]", 0, 4) + "," + t("a", "F32", "[1]", 4, 8) + "}", 8));
    assertTrue(m.contains("not valid JSON") && m.contains("Duplicate field 'a'"), m);
    m = refused(write(tmp, "{\"__metadata__\":{\"format\":1}}", 0));
    assertTrue(m.contains("__metadata__ 'format' must be a string"), m);
    assertTrue(refused(write(tmp, "{\"__metadata__\":[\"x\"]}", 0)).contains("__metadata__ must be an object"));
  }

  @Test
  void entriesNeedKnownDtypeNaturalShapeAndTwoOffsets(@TempDir Path tmp) throws IOException {
    String m = refused(write(tmp, "{" + t("a", "F33", "[1]", 0, 4) + "}", 4));
    assertTrue(m.contains("tensor 'a'") && m.contains("unknown dtype 'F33'"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[-1]", 0, 4) + "}", 4));
    assertTrue(m.contains("tensor 'a'") && m.contains("'shape'"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[1.0]", 0, 4) + "}", 4));
    assertTrue(m.contains("'shape'"), m);
    m = refused(write(tmp, "{" + t("a", "F32", "[99999999999999999999]", 0, 4) + "}", 4));
    assertTrue(m.contains("'shape'"), m);
    m = refused(write(tmp, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4));
    assertTrue(m.contains("tensor 'a'") && m.contains("[begin, end]"), m);
    m = refused(write(tmp, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4));
    assertTrue(m.contains("tensor 'a'") && m.contains("'data_offsets'"), m);
    m = refused(write(tmp, "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4));
    assertTrue(m.contains("tensor 'a'") && m.contains("'dtype'"), m);
    m = refused(write(tmp, "{\"a\":[0,4]}", 4));
    assertTrue(m.contains("tensor 'a'") && m.contains("must be an object"), m);
    // 2^32 x 2^32 elements: the element count overflows 64 bits
    m = refused(write(tmp, "{" + t("a", "F32", "[4294967296,4294967296]", 0, 4) + "}", 4));
    assertTrue(m.contains("tensor 'a'") && m.contains("overflow"), m);
    // 2^62 elements of 4 bytes: the byte count overflows
    m = refused(write(tmp, "{" + t("a", "F32", "[4611686018427387904]", 0, 4) + "}", 4));
    assertTrue(m.contains("overflow"), m);
    // sub-byte dtypes must fill whole bytes
    m = refused(write(tmp, "{" + t("a", "F4", "[3]", 0, 1) + "}", 1));
    assertTrue(m.contains("whole number of bytes"), m);
  }

  @Test
  void readingAnUnsupportedDtypeNamesFileAndTensor(@TempDir Path tmp) throws IOException {
    Path f = write(tmp, "{" + t("a", "I32", "[1]", 0, 4) + "}", 4);
    try (Safetensors st = Safetensors.open(f)) {
      IOException e = assertThrows(IOException.class, () -> st.readFloats("a"));
      assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("'a'"), e.getMessage());
    }
  }
}
