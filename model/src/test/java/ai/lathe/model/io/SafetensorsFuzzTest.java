package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded, time-bounded fuzzing of the safetensors reader: random mutations of a valid file's
 * length prefix, header and size. Each mutated file either loads, and then every tensor reads back
 * exactly the bytes its (validated) offsets point at, or it fails with an IOException or
 * IllegalArgumentException naming the file; any other exception type fails the test.
 */
class SafetensorsFuzzTest {
  static final ObjectMapper OM = new ObjectMapper();
  static final String[] DTYPES = {"F32", "BF16", "F16", "U8", "I32", "F64", "F4", "BOOL", "F33", ""};

  @Test
  void mutatedFilesLoadExactlyOrFailNamingTheFile(@TempDir Path tmp) throws IOException {
    Path base = tmp.resolve("base.safetensors");
    Map<String, Safetensors.Raw> ts = new LinkedHashMap<>();
    ts.put("model.embed_tokens.weight", new Safetensors.Raw("BF16", new long[] {4, 3}, null, floats(12, 1)));
    ts.put("model.layers.0.self_attn.q_proj.weight", Safetensors.Raw.f32(new long[] {2, 3}, floats(6, 2)));
    ts.put("model.layers.0.self_attn.k_proj.weight", Safetensors.Raw.f32(new long[] {2, 3}, floats(6, 3)));
    ts.put("quant", Safetensors.Raw.u8(new long[] {5}, new byte[] {1, 2, 3, 4, 5}));
    Safetensors.writeRaw(base, ts, Map.of("format", "pt"));
    byte[] orig = Files.readAllBytes(base);
    int hlen = (int) ByteBuffer.wrap(orig, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    ObjectNode header = (ObjectNode) OM.readTree(new String(orig, 8, hlen, StandardCharsets.UTF_8));
    byte[] data = Arrays.copyOfRange(orig, 8 + hlen, orig.length);

    Path f = tmp.resolve("mutant.safetensors");
    Random rng = new Random(20240611L);
    int loaded = 0;
    int refused = 0;
    long deadline = System.nanoTime() + 3_000_000_000L;
    for (int iter = 0; iter < 4000 && (iter < 300 || System.nanoTime() < deadline); iter++) {
      int kind = rng.nextInt(9);
      byte[] mutant = mutate(kind, rng, orig, hlen, header, data);
      Files.write(f, mutant);
      try (Safetensors st = Safetensors.open(f)) {
        checkLoadedExactly(st, mutant, "mutation " + kind + " at iteration " + iter);
        loaded++;
      } catch (IOException | IllegalArgumentException e) {
        if (e.getMessage() == null || !e.getMessage().contains(f.toString())) {
          fail("mutation " + kind + " at iteration " + iter + ": message does not name the file: " + e.getMessage(), e);
        }
        refused++;
      } catch (Throwable t) {
        fail("mutation " + kind + " at iteration " + iter + " threw " + t, t);
      }
    }
    System.out.println("safetensors fuzz: " + loaded + " loaded, " + refused + " refused");
    // both outcomes must occur, or the fuzzing explores nothing
    assertTrue(loaded >= 10 && refused >= 100, "loaded " + loaded + ", refused " + refused);
  }

  static float[] floats(int n, int seed) {
    Random r = new Random(seed);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) r.nextGaussian();
    }
    return v;
  }

  /**
   * An opened file's tensors tile its data section (checked here independently, in big integers)
   * and read back exactly the bytes they point at.
   */
  static void checkLoadedExactly(Safetensors st, byte[] file, String what) throws IOException {
    long hlen = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    long dataStart = 8 + hlen;
    List<Safetensors.Entry> es = new ArrayList<>(st.entries().values());
    es.sort(Comparator.comparingLong(Safetensors.Entry::begin).thenComparingLong(Safetensors.Entry::end));
    long at = 0;
    for (Safetensors.Entry e : es) {
      assertEquals(at, e.begin(), what + ": " + e.name() + " does not start where the previous tensor ended");
      BigInteger bits = BigInteger.valueOf(SafetensorsHeader.bitsPer(e.dtype()));
      for (long s : e.shape()) {
        bits = bits.multiply(BigInteger.valueOf(s));
      }
      assertEquals(bits, BigInteger.valueOf(e.end() - e.begin()).shiftLeft(3), what + ": " + e.name() + " size");
      at = e.end();
    }
    assertEquals(file.length - dataStart, at, what + ": tensors do not cover the data section");
    for (Safetensors.Entry e : es) {
      ByteBuffer raw = ByteBuffer.wrap(file, (int) (dataStart + e.begin()), (int) (e.end() - e.begin()))
          .slice().order(ByteOrder.LITTLE_ENDIAN);
      switch (e.dtype()) {
        case "F32", "BF16", "F16" -> {
          float[] got = st.readFloats(e.name());
          float[] want = new float[got.length];
          for (int i = 0; i < want.length; i++) {
            want[i] = e.dtype().equals("F32") ? raw.getFloat(4 * i)
                : e.dtype().equals("BF16") ? Safetensors.bf16ToFloat(raw.getShort(2 * i))
                : Safetensors.f16ToFloat(raw.getShort(2 * i));
          }
          assertArrayEquals(want, got, what + ": " + e.name());
        }
        case "U8" -> {
          byte[] want = new byte[raw.remaining()];
          raw.get(want);
          assertArrayEquals(want, st.readBytes(e.name()), what + ": " + e.name());
        }
        default -> { }
      }
    }
  }

  /** One random mutation of the original file. */
  static byte[] mutate(int kind, Random rng, byte[] orig, int hlen, ObjectNode header, byte[] data) throws IOException {
    byte[] b = orig.clone();
    switch (kind) {
      case 0 -> {
        return Arrays.copyOf(orig, rng.nextInt(orig.length)); // truncation
      }
      case 1 -> { // appended bytes
        byte[] more = Arrays.copyOf(orig, orig.length + 1 + rng.nextInt(16));
        return more;
      }
      case 2 -> { // a different declared header length
        long[] choices = {rng.nextLong(), hlen + rng.nextInt(33) - 16, 0, -1, 1L << 40, 100_000_001L,
            Integer.MAX_VALUE, orig.length};
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, choices[rng.nextInt(choices.length)]);
        return b;
      }
      case 3 -> { // random bytes flipped in the header
        for (int n = 1 + rng.nextInt(3); n > 0; n--) {
          b[8 + rng.nextInt(hlen)] ^= (byte) (1 << rng.nextInt(8));
        }
        return b;
      }
      case 4 -> { // garbage or non-UTF-8 in place of (part of) the header
        int from = 8 + rng.nextInt(hlen);
        int to = Math.min(8 + hlen, from + 1 + rng.nextInt(24));
        String alphabet = "{}[]\":,0123456789-.eE abc\\\u0000";
        for (int i = from; i < to; i++) {
          b[i] = rng.nextInt(4) == 0 ? (byte) (0x80 + rng.nextInt(128)) : (byte) alphabet.charAt(rng.nextInt(alphabet.length()));
        }
        return b;
      }
      default -> {
        return withHeader(structural(rng, header.deepCopy()), data);
      }
    }
  }

  /** A structural change to the header JSON: offsets, dtypes, shapes, fields, metadata. */
  static ObjectNode structural(Random rng, ObjectNode h) {
    List<String> names = new ArrayList<>();
    h.fieldNames().forEachRemaining(n -> {
      if (!n.equals("__metadata__")) {
        names.add(n);
      }
    });
    String name = names.get(rng.nextInt(names.size()));
    ObjectNode e = (ObjectNode) h.get(name);
    ArrayNode offs = (ArrayNode) e.get("data_offsets");
    switch (rng.nextInt(12)) {
      case 0 -> { // shift both offsets
        long d = rng.nextInt(17) - 8;
        offs.set(0, offs.get(0).asLong() + d);
        offs.set(1, offs.get(1).asLong() + d);
      }
      case 1 -> offs.set(rng.nextInt(2), offs.get(rng.nextInt(2)).asLong() + rng.nextInt(9) - 4);
      case 2 -> { // point at another tensor's bytes
        ArrayNode other = (ArrayNode) h.get(names.get(rng.nextInt(names.size()))).get("data_offsets");
        e.set("data_offsets", other.deepCopy());
      }
      case 3 -> { // swap two tensors' offsets (loads iff the sizes agree, reading the other's bytes)
        ObjectNode o = (ObjectNode) h.get(names.get(rng.nextInt(names.size())));
        var tmp = o.get("data_offsets");
        o.set("data_offsets", offs);
        e.set("data_offsets", tmp);
      }
      case 4 -> e.put("dtype", DTYPES[rng.nextInt(DTYPES.length)]);
      case 5 -> {
        ArrayNode shape = (ArrayNode) e.get("shape");
        if (shape.size() > 0) {
          int i = rng.nextInt(shape.size());
          long[] vals = {0, -1, 2 * shape.get(i).asLong(), 1L << 40, Long.MAX_VALUE};
          shape.set(i, vals[rng.nextInt(vals.length)]);
        } else {
          shape.add(2);
        }
      }
      case 6 -> { // reshape keeping the element count: harmless
        ArrayNode shape = (ArrayNode) e.get("shape");
        long n = 1;
        for (JsonNode s : shape) {
          n *= s.asLong();
        }
        e.set("shape", OM.createArrayNode().add(1).add(n));
      }
      case 7 -> e.remove(List.of("dtype", "shape", "data_offsets").get(rng.nextInt(3)));
      case 8 -> e.set(List.of("dtype", "shape", "data_offsets").get(rng.nextInt(3)),
          List.<JsonNode>of(OM.getNodeFactory().numberNode(1.5), OM.getNodeFactory().textNode("x"),
              OM.createArrayNode().add("0").add("4"), OM.createArrayNode().add(0), OM.getNodeFactory().nullNode(),
              OM.createArrayNode().add(0.5).add(4)).get(rng.nextInt(6)));
      case 9 -> h.putObject("extra").put("dtype", "F32").set("shape", OM.createArrayNode().add(1));
      case 10 -> ((ObjectNode) h.get("__metadata__")).set("format", List.<JsonNode>of(OM.getNodeFactory().numberNode(3),
          OM.createObjectNode(), OM.getNodeFactory().nullNode()).get(rng.nextInt(3)));
      default -> { // rename: harmless
        h.remove(name);
        h.set(name + ".renamed", e);
      }
    }
    return h;
  }

  static byte[] withHeader(ObjectNode h, byte[] data) throws IOException {
    byte[] json = OM.writeValueAsBytes(h);
    byte[] padded = Arrays.copyOf(json, json.length + (8 - json.length % 8) % 8);
    Arrays.fill(padded, json.length, padded.length, (byte) ' ');
    return SafetensorsValidationTest.file(padded, data);
  }
}
