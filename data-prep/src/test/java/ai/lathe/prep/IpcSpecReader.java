package ai.lathe.prep;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An Arrow IPC stream reader written from the columnar format specification alone (no Arrow
 * library): encapsulated messages (0xFFFFFFFF, int32 metadata size, a flatbuffer Message, body),
 * the Schema and RecordBatch tables of Message.fbs / Schema.fbs, and the buffer layouts of the
 * types Lathe exports (Utf8, Int, Bool, List, Struct). It checks the test's view of the export
 * independently of Arrow Java, which wrote it.
 */
final class IpcSpecReader {
  /** A schema field: name, type name (utf8, int32, bool, list, struct, ...), children. */
  record Field(String name, String type, List<Field> children) {}

  /** The stream's schema, its custom metadata, and every row as column name → Java value. */
  record Stream(List<Field> fields, Map<String, String> metadata, List<Map<String, Object>> rows) {}

  private final ByteBuffer b;

  private IpcSpecReader(ByteBuffer b) {
    this.b = b;
  }

  static Stream read(byte[] bytes) {
    ByteBuffer all = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    List<Field> fields = null;
    Map<String, String> meta = null;
    List<Map<String, Object>> rows = new ArrayList<>();
    int pos = 0;
    while (true) {
      if (all.getInt(pos) != 0xFFFFFFFF) {
        throw new IllegalStateException("no continuation marker at " + pos);
      }
      int size = all.getInt(pos + 4);
      if (size == 0) {
        break; // end of stream
      }
      int msg = pos + 8;
      IpcSpecReader r = new IpcSpecReader(all);
      int m = r.root(msg);
      int headerType = r.u8(m, 1);
      int header = r.ref(m, 2);
      long bodyLength = r.i64(m, 3, 0);
      int body = msg + size;
      if (headerType == 1) { // Schema
        fields = r.fields(r.ref(header, 1));
        meta = r.keyValues(r.ref(header, 2));
      } else if (headerType == 3) { // RecordBatch
        rows.addAll(r.batch(header, body, fields));
      } else {
        throw new IllegalStateException("unexpected message type " + headerType);
      }
      pos = body + (int) bodyLength;
    }
    return new Stream(fields, meta, rows);
  }

  // ---- flatbuffers: a table starts with an int32 offset back to its vtable of uint16 field offsets

  private int root(int at) {
    return at + b.getInt(at);
  }

  private int field(int table, int id) {
    int vt = table - b.getInt(table);
    int vtSize = Short.toUnsignedInt(b.getShort(vt));
    int slot = 4 + 2 * id;
    return slot < vtSize ? Short.toUnsignedInt(b.getShort(vt + slot)) : 0;
  }

  private int ref(int table, int id) {
    int off = field(table, id);
    return off == 0 ? -1 : table + off + b.getInt(table + off);
  }

  private int u8(int table, int id) {
    int off = field(table, id);
    return off == 0 ? 0 : Byte.toUnsignedInt(b.get(table + off));
  }

  private int i32(int table, int id, int dflt) {
    int off = field(table, id);
    return off == 0 ? dflt : b.getInt(table + off);
  }

  private long i64(int table, int id, long dflt) {
    int off = field(table, id);
    return off == 0 ? dflt : b.getLong(table + off);
  }

  private String string(int at) {
    if (at < 0) {
      return null;
    }
    byte[] s = new byte[b.getInt(at)];
    b.get(at + 4, s);
    return new String(s, StandardCharsets.UTF_8);
  }

  /** The tables of a vector of tables. */
  private List<Integer> tables(int vec) {
    List<Integer> out = new ArrayList<>();
    if (vec >= 0) {
      for (int i = 0; i < b.getInt(vec); i++) {
        int e = vec + 4 + 4 * i;
        out.add(e + b.getInt(e));
      }
    }
    return out;
  }

  private Map<String, String> keyValues(int vec) {
    Map<String, String> out = new LinkedHashMap<>();
    for (int kv : tables(vec)) {
      out.put(string(ref(kv, 0)), string(ref(kv, 1)));
    }
    return out;
  }

  /** Schema.fbs Field: name 0, nullable 1, type_type 2, type 3, dictionary 4, children 5. */
  private List<Field> fields(int vec) {
    List<Field> out = new ArrayList<>();
    for (int f : tables(vec)) {
      int tt = u8(f, 2);
      String type = switch (tt) {
        case 2 -> (u8(ref(f, 3), 1) == 1 ? "int" : "uint") + i32(ref(f, 3), 0, 0);
        case 5 -> "utf8";
        case 6 -> "bool";
        case 12 -> "list";
        case 13 -> "struct";
        default -> "type#" + tt;
      };
      out.add(new Field(string(ref(f, 0)), type, fields(ref(f, 5))));
    }
    return out;
  }

  // ---- record batches: FieldNode (length, null_count) and Buffer (offset, length) structs of 16 bytes

  private int nodeAt;
  private int bufferAt;
  private int nodes;
  private int buffers;
  private int body;

  private List<Map<String, Object>> batch(int rb, int body, List<Field> fields) {
    int length = (int) i64(rb, 0, 0);
    nodes = ref(rb, 1) + 4;
    buffers = ref(rb, 2) + 4;
    this.body = body;
    nodeAt = 0;
    bufferAt = 0;
    List<Map<String, Object>> rows = new ArrayList<>();
    for (int i = 0; i < length; i++) {
      rows.add(new LinkedHashMap<>());
    }
    for (Field f : fields) {
      List<Object> col = column(f);
      for (int i = 0; i < length; i++) {
        rows.get(i).put(f.name(), col.get(i));
      }
    }
    return rows;
  }

  /** The next buffer as (absolute position, length). */
  private int[] buffer() {
    int at = buffers + 16 * bufferAt++;
    return new int[] {body + (int) b.getLong(at), (int) b.getLong(at + 8)};
  }

  private boolean bit(int[] buf, int i) {
    return (b.get(buf[0] + (i >> 3)) >> (i & 7) & 1) == 1;
  }

  /** One column's values in depth-first buffer order, null where the validity bitmap says so. */
  private List<Object> column(Field f) {
    int node = nodes + 16 * nodeAt++;
    int n = (int) b.getLong(node);
    long nulls = b.getLong(node + 8);
    int[] validity = buffer();
    List<Object> out = new ArrayList<>();
    switch (f.type()) {
      case "utf8" -> {
        int[] offsets = buffer();
        int[] data = buffer();
        for (int i = 0; i < n; i++) {
          int s = b.getInt(offsets[0] + 4 * i);
          byte[] v = new byte[b.getInt(offsets[0] + 4 * i + 4) - s];
          b.get(data[0] + s, v);
          out.add(new String(v, StandardCharsets.UTF_8));
        }
      }
      case "int32" -> {
        int[] data = buffer();
        for (int i = 0; i < n; i++) {
          out.add(b.getInt(data[0] + 4 * i));
        }
      }
      case "int64" -> {
        int[] data = buffer();
        for (int i = 0; i < n; i++) {
          out.add(b.getLong(data[0] + 8 * i));
        }
      }
      case "bool" -> {
        int[] data = buffer();
        for (int i = 0; i < n; i++) {
          out.add(bit(data, i));
        }
      }
      case "list" -> {
        int[] offsets = buffer();
        List<Object> child = column(f.children().get(0));
        for (int i = 0; i < n; i++) {
          out.add(new ArrayList<>(child.subList(b.getInt(offsets[0] + 4 * i), b.getInt(offsets[0] + 4 * i + 4))));
        }
      }
      case "struct" -> {
        List<List<Object>> cols = new ArrayList<>();
        for (Field c : f.children()) {
          cols.add(column(c));
        }
        for (int i = 0; i < n; i++) {
          Map<String, Object> m = new LinkedHashMap<>();
          for (int c = 0; c < cols.size(); c++) {
            m.put(f.children().get(c).name(), cols.get(c).get(i));
          }
          out.add(m);
        }
      }
      default -> throw new IllegalStateException(f.name() + ": type " + f.type() + " not read here");
    }
    if (nulls > 0 && validity[1] > 0) {
      for (int i = 0; i < n; i++) {
        if (!bit(validity, i)) {
          out.set(i, null);
        }
      }
    }
    return out;
  }
}
