package ai.lathe.model.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Map;

/**
 * Reader and writer for the safetensors format: an 8-byte little-endian header length, a JSON
 * header mapping tensor names to dtype, shape and byte offsets, then the raw little-endian data.
 * Reads F32, BF16 and F16 into float arrays; writes F32 or BF16. Opening a file validates its
 * header as the format's reference implementation does ({@link SafetensorsHeader}), so a tensor
 * whose offsets overlap another's, leave a gap or run past the data is refused before any read.
 */
public final class Safetensors implements AutoCloseable {

  /** One tensor's entry in the header. */
  public record Entry(String name, String dtype, long[] shape, long begin, long end) {
    public long numel() {
      long n = 1;
      for (long s : shape) {
        n *= s;
      }
      return n;
    }
  }

  private final Path file;
  private final FileChannel channel;
  private final long dataStart;
  private final Map<String, Entry> entries;
  private final Map<String, String> metadata;

  private Safetensors(Path file) throws IOException {
    this.file = file;
    if (!Files.isRegularFile(file)) {
      throw new IOException(file + ": safetensors file not found");
    }
    this.channel = FileChannel.open(file, StandardOpenOption.READ);
    try {
      long size = channel.size();
      if (size < 8) {
        throw new IOException(file + ": truncated safetensors file (" + size + " bytes, no header)");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(lenBuf, 0);
      long headerLen = lenBuf.getLong(0);
      SafetensorsHeader.checkHeaderLength(file, headerLen, size);
      ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
      readFully(hb, 8);
      this.dataStart = 8 + headerLen;
      SafetensorsHeader.Parsed parsed = SafetensorsHeader.parse(file, hb.array(), size - dataStart);
      this.entries = parsed.entries();
      this.metadata = parsed.metadata();
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
  }

  private static int bytesPer(String dtype) {
    return switch (dtype) {
      case "F32", "I32", "U32" -> 4;
      case "BF16", "F16", "I16", "U16" -> 2;
      case "F64", "I64", "U64" -> 8;
      case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2" -> 1;
      default -> -1;
    };
  }

  private void readFully(ByteBuffer dst, long pos) throws IOException {
    while (dst.hasRemaining()) {
      int n = channel.read(dst, pos);
      if (n < 0) {
        throw new IOException(file + ": unexpected end of file");
      }
      pos += n;
    }
  }

  public static Safetensors open(Path file) throws IOException {
    return new Safetensors(file);
  }

  public Path file() {
    return file;
  }

  public Map<String, Entry> entries() {
    return entries;
  }

  public Map<String, String> metadata() {
    return metadata;
  }

  public boolean has(String name) {
    return entries.containsKey(name);
  }

  public Entry entry(String name) throws IOException {
    Entry e = entries.get(name);
    if (e == null) {
      throw new IOException(file + ": tensor '" + name + "' not found");
    }
    return e;
  }

  /** Reads a tensor as floats, converting from F32, BF16 or F16. */
  public float[] readFloats(String name) throws IOException {
    Entry e = entry(name);
    if (e.numel() > Integer.MAX_VALUE - 8) {
      throw new IOException(file + ": tensor '" + name + "' too large for one array");
    }
    int n = (int) e.numel();
    float[] out = new float[n];
    // read in chunks so a multi-GB tensor never needs one ByteBuffer of its size twice
    int width = bytesPer(e.dtype());
    if (!(e.dtype().equals("F32") || e.dtype().equals("BF16") || e.dtype().equals("F16"))) {
      throw new IOException(file + ": tensor '" + name + "' has unsupported dtype " + e.dtype()
          + " (supported: F32, BF16, F16)");
    }
    int chunkElems = 1 << 20;
    ByteBuffer buf = ByteBuffer.allocate(Math.min(chunkElems, n) * width).order(ByteOrder.LITTLE_ENDIAN);
    for (int start = 0; start < n; start += chunkElems) {
      int cnt = Math.min(chunkElems, n - start);
      buf.clear().limit(cnt * width);
      readFully(buf, dataStart + e.begin() + (long) start * width);
      buf.flip();
      switch (e.dtype()) {
        case "F32" -> buf.asFloatBuffer().get(out, start, cnt);
        case "BF16" -> {
          for (int i = 0; i < cnt; i++) {
            out[start + i] = bf16ToFloat(buf.getShort(2 * i));
          }
        }
        default -> {
          for (int i = 0; i < cnt; i++) {
            out[start + i] = f16ToFloat(buf.getShort(2 * i));
          }
        }
      }
    }
    return out;
  }

  /**
   * Reads elements [start, start + count) of an F32, BF16 or F16 tensor into dst[0, count), so a
   * tensor larger than memory (an 8B model's embedding as floats) can be streamed in slices.
   */
  public void readFloats(String name, long start, float[] dst, int count) throws IOException {
    Entry e = entry(name);
    if (start < 0 || count < 0 || start + count > e.numel() || count > dst.length) {
      throw new IOException(file + ": tensor '" + name + "': slice [" + start + ", " + (start + count)
          + ") outside its " + e.numel() + " elements");
    }
    if (!(e.dtype().equals("F32") || e.dtype().equals("BF16") || e.dtype().equals("F16"))) {
      throw new IOException(file + ": tensor '" + name + "' has unsupported dtype " + e.dtype()
          + " (supported: F32, BF16, F16)");
    }
    int width = bytesPer(e.dtype());
    ByteBuffer buf = ByteBuffer.allocate(count * width).order(ByteOrder.LITTLE_ENDIAN);
    readFully(buf, dataStart + e.begin() + start * width);
    buf.flip();
    switch (e.dtype()) {
      case "F32" -> buf.asFloatBuffer().get(dst, 0, count);
      case "BF16" -> {
        for (int i = 0; i < count; i++) {
          dst[i] = bf16ToFloat(buf.getShort(2 * i));
        }
      }
      default -> {
        for (int i = 0; i < count; i++) {
          dst[i] = f16ToFloat(buf.getShort(2 * i));
        }
      }
    }
  }

  /**
   * Reads a tensor's stored bytes into dst (from its position; dst must have exactly the tensor's
   * byte size remaining), after checking dtype and shape: no conversion, no heap copy.
   */
  public void readRaw(String name, String dtype, long[] expectedShape, ByteBuffer dst) throws IOException {
    Entry e = entry(name);
    if (!Arrays.equals(e.shape(), expectedShape)) {
      throw new IOException(file + ": tensor '" + name + "' has shape " + Arrays.toString(e.shape())
          + ", expected " + Arrays.toString(expectedShape));
    }
    if (!e.dtype().equals(dtype) || dst.remaining() != e.end() - e.begin()) {
      throw new IOException(file + ": tensor '" + name + "' is " + e.dtype() + " of " + (e.end() - e.begin())
          + " bytes, expected " + dtype + " of " + dst.remaining());
    }
    readFully(dst, dataStart + e.begin());
  }

  /** Reads a U8 tensor's bytes (e.g. bitsandbytes' packed 4-bit codes and its quant_state blob). */
  public byte[] readBytes(String name) throws IOException {
    Entry e = entry(name);
    if (!e.dtype().equals("U8")) {
      throw new IOException(file + ": tensor '" + name + "' has dtype " + e.dtype() + ", expected U8");
    }
    if (e.numel() > Integer.MAX_VALUE - 8) {
      throw new IOException(file + ": tensor '" + name + "' too large for one array");
    }
    ByteBuffer buf = ByteBuffer.allocate((int) e.numel());
    readFully(buf, dataStart + e.begin());
    return buf.array();
  }

  /** Reads a tensor and checks its shape, naming the file and tensor when it differs. */
  public float[] readFloats(String name, long... expectedShape) throws IOException {
    Entry e = entry(name);
    if (!Arrays.equals(e.shape(), expectedShape)) {
      throw new IOException(file + ": tensor '" + name + "' has shape " + Arrays.toString(e.shape())
          + ", expected " + Arrays.toString(expectedShape));
    }
    return readFloats(name);
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }

  public static float bf16ToFloat(short s) {
    return Float.intBitsToFloat((s & 0xffff) << 16);
  }

  /** Round-to-nearest-even conversion, as torch does. */
  public static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) 0x7fc0;
    }
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  public static float f16ToFloat(short h) {
    int bits = h & 0xffff;
    int sign = (bits >>> 15) << 31;
    int exp = (bits >>> 10) & 0x1f;
    int mant = bits & 0x3ff;
    if (exp == 0) {
      float v = mant * 0x1p-24f; // subnormal
      return sign == 0 ? v : -v;
    }
    if (exp == 31) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
  }

  // ------------------------------------------------------------------ writing

  /** A tensor to write: float data with a shape. */
  public record Tensor(long[] shape, float[] data) {
    public Tensor {
      long n = 1;
      for (long s : shape) {
        n *= s;
      }
      if (n != data.length) {
        throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " does not match "
            + data.length + " values");
      }
    }
  }

  /** Writes tensors (in the map's order) with dtype F32 or BF16. */
  public static void write(Path file, Map<String, Tensor> tensors, String dtype,
      Map<String, String> metadata) throws IOException {
    if (!dtype.equals("F32") && !dtype.equals("BF16")) {
      throw new IllegalArgumentException("can only write F32 or BF16, not " + dtype);
    }
    Map<String, Raw> raw = new java.util.LinkedHashMap<>();
    tensors.forEach((name, t) -> raw.put(name, new Raw(dtype, t.shape(), null, t.data())));
    writeRaw(file, raw, metadata);
  }

  /**
   * A tensor to write: U8 bytes, or float values written as F32 or BF16 (kept as floats: embeddings
   * can exceed 2 GB as bytes).
   */
  public record Raw(String dtype, long[] shape, byte[] data, float[] floats) {
    public static Raw f32(long[] shape, float[] v) {
      return new Raw("F32", shape, null, v);
    }

    public static Raw u8(long[] shape, byte[] v) {
      return new Raw("U8", shape, v, null);
    }

    long byteLength() {
      return floats != null ? (long) bytesPer(dtype) * floats.length : data.length;
    }
  }

  /** Writes tensors of mixed dtypes (in the map's order); the data section is 8-byte aligned. */
  public static void writeRaw(Path file, Map<String, Raw> tensors, Map<String, String> metadata) throws IOException {
    ObjectMapper om = new ObjectMapper();
    ObjectNode header = om.createObjectNode();
    if (metadata != null && !metadata.isEmpty()) {
      ObjectNode m = header.putObject("__metadata__");
      metadata.forEach(m::put);
    }
    long off = 0;
    for (Map.Entry<String, Raw> t : tensors.entrySet()) {
      long n = 1;
      for (long x : t.getValue().shape()) {
        n *= x;
      }
      if (n * bytesPer(t.getValue().dtype()) != t.getValue().byteLength()) {
        throw new IllegalArgumentException(t.getKey() + ": " + t.getValue().byteLength() + " bytes do not fit shape "
            + Arrays.toString(t.getValue().shape()) + " of " + t.getValue().dtype());
      }
      ObjectNode e = header.putObject(t.getKey());
      e.put("dtype", t.getValue().dtype());
      var sh = e.putArray("shape");
      for (long x : t.getValue().shape()) {
        sh.add(x);
      }
      e.putArray("data_offsets").add(off).add(off + t.getValue().byteLength());
      off += t.getValue().byteLength();
    }
    byte[] hjson = om.writeValueAsBytes(header);
    int pad = (8 - (hjson.length % 8)) % 8;
    byte[] hbytes = Arrays.copyOf(hjson, hjson.length + pad);
    Arrays.fill(hbytes, hjson.length, hbytes.length, (byte) ' ');
    try (OutputStream os = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
      os.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, hbytes.length).array());
      os.write(hbytes);
      ByteBuffer chunk = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
      for (Raw r : tensors.values()) {
        if (r.floats() == null) {
          os.write(r.data());
          continue;
        }
        boolean bf16 = r.dtype().equals("BF16");
        for (float f : r.floats()) {
          if (chunk.remaining() < 4) {
            os.write(chunk.array(), 0, chunk.position());
            chunk.clear();
          }
          if (bf16) {
            chunk.putShort(floatToBf16(f));
          } else {
            chunk.putFloat(f);
          }
        }
        os.write(chunk.array(), 0, chunk.position());
        chunk.clear();
      }
    }
  }
}
