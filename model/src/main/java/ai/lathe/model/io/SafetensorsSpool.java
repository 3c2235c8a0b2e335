package ai.lathe.model.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Writes one safetensors file whose tensors are made one at a time and whose sizes are known only
 * once made (an NF4 weight's quantisation state): each tensor's bytes go to a spool file beside
 * the output as it comes, and {@link #finish} writes the header, then copies the spool after it.
 * Memory: one tensor, or one slice of a float tensor. The layout equals {@link Safetensors#writeRaw}.
 */
public final class SafetensorsSpool implements AutoCloseable {
  private record Entry(String name, String dtype, long[] shape, long begin, long end) {}

  private final Path file;
  private final Path spool;
  private final OutputStream out;
  private final List<Entry> entries = new ArrayList<>();
  private long offset;
  private boolean finished;

  public SafetensorsSpool(Path file) throws IOException {
    this.file = file;
    this.spool = file.resolveSibling(file.getFileName() + ".spool");
    this.out = new BufferedOutputStream(Files.newOutputStream(spool), 1 << 20);
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long x : shape) {
      n *= x;
    }
    return n;
  }

  private void add(String name, String dtype, long[] shape, long bytes) {
    entries.add(new Entry(name, dtype, shape.clone(), offset, offset + bytes));
    offset += bytes;
  }

  /** A tensor of Safetensors.Raw (U8 bytes, or floats written as F32 or BF16). */
  public void put(String name, Safetensors.Raw r) throws IOException {
    if (r.data() != null) {
      if (numel(r.shape()) != r.data().length) {
        throw new IllegalArgumentException(name + ": " + r.data().length + " bytes do not fit shape "
            + Arrays.toString(r.shape()) + " of " + r.dtype());
      }
      out.write(r.data());
      add(name, r.dtype(), r.shape(), r.data().length);
      return;
    }
    float[] v = r.floats();
    put(name, r.dtype(), r.shape(), (start, dst, count) -> System.arraycopy(v, (int) start, dst, 0, count));
  }

  /** A float tensor written as dtype (F32 or BF16), filled slice by slice (1M values at a time). */
  public void put(String name, String dtype, long[] shape, StreamingCheckpointWriter.Slices src) throws IOException {
    if (!dtype.equals("F32") && !dtype.equals("BF16")) {
      throw new IllegalArgumentException(name + ": dtype " + dtype + " (F32 or BF16)");
    }
    int width = dtype.equals("BF16") ? 2 : 4;
    long n = numel(shape);
    float[] slice = new float[(int) Math.min(1 << 20, n)];
    ByteBuffer b = ByteBuffer.allocate(slice.length * width).order(ByteOrder.LITTLE_ENDIAN);
    for (long start = 0; start < n; start += slice.length) {
      int count = (int) Math.min(slice.length, n - start);
      src.fill(start, slice, count);
      b.clear();
      for (int i = 0; i < count; i++) {
        if (width == 2) {
          b.putShort(Safetensors.floatToBf16(slice[i]));
        } else {
          b.putFloat(slice[i]);
        }
      }
      out.write(b.array(), 0, b.position());
    }
    add(name, dtype, shape, n * width);
  }

  /** Writes the file: 8-byte header length, the JSON header padded to 8 bytes, the spooled data. */
  public void finish(Map<String, String> metadata) throws IOException {
    out.close();
    ObjectMapper om = new ObjectMapper();
    ObjectNode header = om.createObjectNode();
    if (metadata != null && !metadata.isEmpty()) {
      ObjectNode m = header.putObject("__metadata__");
      metadata.forEach(m::put);
    }
    for (Entry e : entries) {
      ObjectNode o = header.putObject(e.name());
      o.put("dtype", e.dtype());
      var sh = o.putArray("shape");
      for (long x : e.shape()) {
        sh.add(x);
      }
      o.putArray("data_offsets").add(e.begin()).add(e.end());
    }
    byte[] hjson = om.writeValueAsBytes(header);
    int pad = (8 - (hjson.length % 8)) % 8;
    byte[] hbytes = Arrays.copyOf(hjson, hjson.length + pad);
    Arrays.fill(hbytes, hjson.length, hbytes.length, (byte) ' ');
    try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(file), 1 << 20);
        InputStream in = Files.newInputStream(spool)) {
      os.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, hbytes.length).array());
      os.write(hbytes);
      in.transferTo(os);
    }
    Files.delete(spool);
    finished = true;
  }

  @Override
  public void close() throws IOException {
    if (!finished) {
      out.close();
      Files.deleteIfExists(spool);
    }
  }
}
