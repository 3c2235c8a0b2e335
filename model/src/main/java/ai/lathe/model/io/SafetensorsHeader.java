package ai.lathe.model.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses and validates a safetensors header the way the format's reference implementation does:
 * the header is a UTF-8 JSON object; {@code __metadata__} maps strings to strings; every other key
 * is a tensor with a known dtype, a shape of non-negative integers and {@code data_offsets [begin,
 * end]}; sorted by offsets, the tensors tile the data section exactly (contiguous from 0, no gap,
 * no overlap, no trailing bytes) and each spans dtype size x product(shape) bytes, computed without
 * overflow. Every error is an IOException naming the file and, where there is one, the tensor.
 */
final class SafetensorsHeader {
  /** The reference implementation refuses headers above this size. */
  static final long MAX_HEADER_BYTES = 100_000_000L;

  private static final ObjectMapper JSON = new ObjectMapper()
      .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  /** Tensors in header order, and the free-form metadata. */
  record Parsed(Map<String, Safetensors.Entry> entries, Map<String, String> metadata) {}

  private SafetensorsHeader() {}

  /** Bits per element of every dtype the format defines; -1 for an unknown name. */
  static int bitsPer(String dtype) {
    return switch (dtype) {
      case "F4" -> 4;
      case "F6_E2M3", "F6_E3M2" -> 6;
      case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0" -> 8;
      case "I16", "U16", "F16", "BF16" -> 16;
      case "I32", "U32", "F32" -> 32;
      case "I64", "U64", "F64", "C64" -> 64;
      default -> -1;
    };
  }

  /**
   * The declared header length must be positive (as an unsigned 64-bit value), at most
   * {@link #MAX_HEADER_BYTES}, and fit in the file after the 8-byte prefix.
   */
  static void checkHeaderLength(Path file, long declared, long fileSize) throws IOException {
    if (declared < 0 || declared > MAX_HEADER_BYTES) {
      throw new IOException(file + ": corrupt safetensors header: declared length "
          + Long.toUnsignedString(declared) + " exceeds the " + MAX_HEADER_BYTES + "-byte limit");
    }
    if (declared == 0) {
      throw new IOException(file + ": corrupt safetensors header: declared length 0");
    }
    if (declared > fileSize - 8) {
      throw new IOException(file + ": truncated or corrupt safetensors header: declared length " + declared
          + " but the file has only " + (fileSize - 8) + " bytes after the length prefix");
    }
  }

  /** Validates the header bytes against a data section of dataLength bytes. */
  static Parsed parse(Path file, byte[] header, long dataLength) throws IOException {
    JsonNode root = json(file, header);
    Map<String, Safetensors.Entry> entries = new LinkedHashMap<>();
    Map<String, String> metadata = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      if (f.getKey().equals("__metadata__")) {
        metadata(file, f.getValue(), metadata);
      } else {
        entries.put(f.getKey(), entry(file, f.getKey(), f.getValue()));
      }
    }
    checkLayout(file, entries.values(), dataLength);
    return new Parsed(Collections.unmodifiableMap(entries), Collections.unmodifiableMap(metadata));
  }

  /** The header must be valid UTF-8 holding exactly one JSON object (space padding allowed). */
  private static JsonNode json(Path file, byte[] header) throws IOException {
    String text;
    try {
      text = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(header)).toString();
    } catch (CharacterCodingException e) {
      throw new IOException(file + ": safetensors header is not valid UTF-8");
    }
    if (!text.startsWith("{")) {
      throw new IOException(file + ": safetensors header does not start with '{' (not a safetensors file?)");
    }
    JsonNode root;
    try {
      root = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      String at = e.getLocation() == null ? "" : " at character " + e.getLocation().getCharOffset();
      throw new IOException(file + ": safetensors header is not valid JSON" + at + ": " + e.getOriginalMessage());
    }
    if (root == null || !root.isObject()) {
      throw new IOException(file + ": safetensors header is not a JSON object");
    }
    return root;
  }

  /** __metadata__ is null or an object whose values are all strings. */
  private static void metadata(Path file, JsonNode m, Map<String, String> out) throws IOException {
    if (m.isNull()) {
      return;
    }
    if (!m.isObject()) {
      throw new IOException(file + ": safetensors __metadata__ must be an object of strings, got " + m.getNodeType());
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = m.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!e.getValue().isTextual()) {
        throw new IOException(file + ": safetensors __metadata__ '" + e.getKey() + "' must be a string, got "
            + e.getValue().getNodeType());
      }
      out.put(e.getKey(), e.getValue().textValue());
    }
  }

  private static Safetensors.Entry entry(Path file, String name, JsonNode v) throws IOException {
    String where = file + ": tensor '" + name + "': ";
    if (!v.isObject()) {
      throw new IOException(where + "header entry must be an object, got " + v.getNodeType());
    }
    JsonNode dtype = v.get("dtype");
    if (dtype == null || !dtype.isTextual()) {
      throw new IOException(where + "missing or non-string 'dtype'");
    }
    if (bitsPer(dtype.textValue()) < 0) {
      throw new IOException(where + "unknown dtype '" + dtype.textValue() + "'");
    }
    long[] shape = naturals(v.get("shape"), where + "'shape'");
    long[] offsets = naturals(v.get("data_offsets"), where + "'data_offsets'");
    if (offsets.length != 2) {
      throw new IOException(where + "'data_offsets' must be [begin, end], got " + v.get("data_offsets"));
    }
    return new Safetensors.Entry(name, dtype.textValue(), shape, offsets[0], offsets[1]);
  }

  /** A JSON array of integers in [0, 2^63). */
  private static long[] naturals(JsonNode a, String what) throws IOException {
    if (a == null || !a.isArray()) {
      throw new IOException(what + " must be an array of non-negative integers, got " + a);
    }
    long[] out = new long[a.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode x = a.get(i);
      if (!x.isIntegralNumber() || !x.canConvertToLong() || x.longValue() < 0) {
        throw new IOException(what + " must hold non-negative integers, got " + a);
      }
      out[i] = x.longValue();
    }
    return out;
  }

  /**
   * Sorted by (begin, end), each tensor must start where the previous one ended (the first at 0),
   * span exactly its dtype size x product(shape) bytes, and the last must end at the data length.
   */
  private static void checkLayout(Path file, Iterable<Safetensors.Entry> entries, long dataLength) throws IOException {
    List<Safetensors.Entry> sorted = new ArrayList<>();
    entries.forEach(sorted::add);
    sorted.sort(Comparator.comparingLong(Safetensors.Entry::begin).thenComparingLong(Safetensors.Entry::end));
    long at = 0;
    Safetensors.Entry prev = null;
    for (Safetensors.Entry e : sorted) {
      String where = file + ": tensor '" + e.name() + "' ";
      if (e.begin() < at) {
        throw new IOException(where + "bytes [" + e.begin() + ", " + e.end() + ") overlap tensor '" + prev.name()
            + "' [" + prev.begin() + ", " + prev.end() + ")");
      }
      if (e.begin() > at) {
        throw new IOException(where + "starts at byte " + e.begin() + " but the previous tensor"
            + (prev == null ? "" : " '" + prev.name() + "'") + " ends at " + at + " (a gap of " + (e.begin() - at)
            + " bytes)");
      }
      if (e.end() < e.begin()) {
        throw new IOException(where + "has data_offsets [" + e.begin() + ", " + e.end() + "] that end before they begin");
      }
      long bytes = byteLength(file, e);
      if (e.end() - e.begin() != bytes) {
        throw new IOException(where + e.dtype() + " " + Arrays.toString(e.shape()) + " needs " + bytes
            + " bytes but its data_offsets span " + (e.end() - e.begin()));
      }
      at = e.end();
      prev = e;
    }
    if (at > dataLength) {
      throw new IOException(file + ": truncated: tensor '" + prev.name() + "' needs bytes up to " + at
          + " but only " + dataLength + " data bytes are present");
    }
    if (at < dataLength) {
      throw new IOException(file + ": " + (dataLength - at) + " bytes after the end of the last tensor"
          + (prev == null ? " (the header lists no tensors)" : " '" + prev.name() + "'")
          + ": the tensors' data_offsets must cover the whole data section");
    }
  }

  /** dtype size x product(shape) in bytes, refusing an overflow or a partial last byte. */
  static long byteLength(Path file, Safetensors.Entry e) throws IOException {
    try {
      long n = 1;
      for (long s : e.shape()) {
        n = Math.multiplyExact(n, s);
      }
      long bits = Math.multiplyExact(n, (long) bitsPer(e.dtype()));
      if (bits % 8 != 0) {
        throw new IOException(file + ": tensor '" + e.name() + "': " + e.dtype() + " " + Arrays.toString(e.shape())
            + " does not fill a whole number of bytes");
      }
      return bits / 8;
    } catch (ArithmeticException x) {
      throw new IOException(file + ": tensor '" + e.name() + "': shape " + Arrays.toString(e.shape()) + " of "
          + e.dtype() + " overflows a 64-bit byte count");
    }
  }
}
