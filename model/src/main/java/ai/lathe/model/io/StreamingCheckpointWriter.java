package ai.lathe.model.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a (possibly sharded) safetensors checkpoint one tensor at a time, so a model larger than
 * memory can be produced module by module. The tensor names and shapes are declared up front (the
 * headers need them); tensors must then be put in that order. Files go into a folder the caller
 * commits (for example inside {@link AtomicDir#write}).
 */
public final class StreamingCheckpointWriter implements AutoCloseable {
  private final Path dir;
  private final String dtype;
  private final int width;
  private final List<List<String>> shards = new ArrayList<>();
  private final Map<String, long[]> shapes;
  private final List<String> order;
  private int next;
  private int shard = -1;
  private OutputStream out;

  public StreamingCheckpointWriter(Path dir, LinkedHashMap<String, long[]> shapes, String dtype, long maxShardBytes)
      throws IOException {
    this(dir, shapes, dtype, bySize(shapes, dtype, maxShardBytes));
  }

  /**
   * Shards as given (for example the layout of the checkpoint a merge starts from): each group is
   * one file, in order; together they must list every declared tensor once, in declared order.
   */
  public StreamingCheckpointWriter(Path dir, LinkedHashMap<String, long[]> shapes, String dtype,
      List<List<String>> shardGroups) throws IOException {
    this.dir = dir;
    this.dtype = dtype;
    this.width = dtype.equals("BF16") ? 2 : 4;
    this.shapes = shapes;
    this.order = new ArrayList<>(shapes.keySet());
    List<String> flat = new ArrayList<>();
    for (List<String> g : shardGroups) {
      if (g.isEmpty()) {
        throw new IllegalArgumentException("empty shard in the checkpoint layout");
      }
      shards.add(new ArrayList<>(g));
      flat.addAll(g);
    }
    if (!flat.equals(order)) {
      throw new IllegalArgumentException("shards must list the declared tensors once each, in declared order");
    }
    if (shards.size() > 1) {
      ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
      ObjectNode index = om.createObjectNode();
      long total = 0;
      ObjectNode wm = om.createObjectNode();
      for (int s = 0; s < shards.size(); s++) {
        for (String n : shards.get(s)) {
          wm.put(n, fileName(s));
          total += numel(shapes.get(n)) * width;
        }
      }
      index.putObject("metadata").put("total_size", total);
      index.set("weight_map", wm);
      om.writeValue(dir.resolve(HfCheckpoint.INDEX).toFile(), index);
    }
  }

  /** Greedy grouping in declared order, a new file when the next tensor would pass maxShardBytes. */
  private static List<List<String>> bySize(LinkedHashMap<String, long[]> shapes, String dtype, long maxShardBytes) {
    int width = dtype.equals("BF16") ? 2 : 4;
    List<List<String>> shards = new ArrayList<>();
    List<String> cur = new ArrayList<>();
    long bytes = 0;
    for (String n : shapes.keySet()) {
      long b = numel(shapes.get(n)) * width;
      if (!cur.isEmpty() && bytes + b > maxShardBytes) {
        shards.add(cur);
        cur = new ArrayList<>();
        bytes = 0;
      }
      cur.add(n);
      bytes += b;
    }
    shards.add(cur);
    return shards;
  }

  private String fileName(int s) {
    return shards.size() == 1 ? HfCheckpoint.SINGLE : String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long x : shape) {
      n *= x;
    }
    return n;
  }

  /** Elements [start, start + count) of a tensor into dst[0, count). */
  public interface Slices {
    void fill(long start, float[] dst, int count) throws IOException;
  }

  private static final int SLICE = 1 << 20;

  /** Writes the next tensor; its name must be the next declared one. */
  public void put(String name, float[] data) throws IOException {
    if (data.length != numel(checkNext(name))) {
      throw new IllegalArgumentException(name + ": " + data.length + " values for shape "
          + Arrays.toString(shapes.get(name)));
    }
    put(name, (start, dst, count) -> System.arraycopy(data, (int) start, dst, 0, count));
  }

  /**
   * Writes the next tensor slice by slice (1M elements at a time), so a tensor is never held
   * whole: an 8B model's embedding streams from the input checkpoint to the output.
   */
  public void put(String name, Slices src) throws IOException {
    long n = numel(checkNext(name));
    int s = 0;
    while (!shards.get(s).contains(name)) {
      s++;
    }
    if (s != shard) {
      openShard(s);
    }
    float[] slice = new float[(int) Math.min(SLICE, n)];
    ByteBuffer bb = ByteBuffer.allocate(slice.length * width).order(ByteOrder.LITTLE_ENDIAN);
    for (long start = 0; start < n; start += SLICE) {
      int cnt = (int) Math.min(SLICE, n - start);
      src.fill(start, slice, cnt);
      bb.clear();
      for (int i = 0; i < cnt; i++) {
        if (width == 4) {
          bb.putFloat(slice[i]);
        } else {
          bb.putShort(Safetensors.floatToBf16(slice[i]));
        }
      }
      out.write(bb.array(), 0, bb.position());
    }
    next++;
  }

  private long[] checkNext(String name) {
    if (next >= order.size() || !order.get(next).equals(name)) {
      throw new IllegalStateException("expected tensor " + (next < order.size() ? order.get(next) : "(none)")
          + ", got " + name);
    }
    return shapes.get(name);
  }

  private void openShard(int s) throws IOException {
    if (out != null) {
      out.close();
    }
    shard = s;
    ObjectMapper om = new ObjectMapper();
    ObjectNode header = om.createObjectNode();
    header.putObject("__metadata__").put("format", "pt");
    long off = 0;
    for (String n : shards.get(s)) {
      long len = numel(shapes.get(n)) * width;
      ObjectNode e = header.putObject(n);
      e.put("dtype", dtype);
      var sh = e.putArray("shape");
      for (long x : shapes.get(n)) {
        sh.add(x);
      }
      e.putArray("data_offsets").add(off).add(off + len);
      off += len;
    }
    byte[] h = om.writeValueAsBytes(header);
    int pad = (8 - h.length % 8) % 8;
    byte[] hp = Arrays.copyOf(h, h.length + pad);
    Arrays.fill(hp, h.length, hp.length, (byte) ' ');
    out = new BufferedOutputStream(Files.newOutputStream(dir.resolve(fileName(s))), 1 << 20);
    out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, hp.length).array());
    out.write(hp);
  }

  @Override
  public void close() throws IOException {
    if (out != null) {
      out.close();
      out = null;
    }
    if (next != order.size()) {
      throw new IOException("checkpoint incomplete: " + next + " of " + order.size() + " tensors written");
    }
  }
}
