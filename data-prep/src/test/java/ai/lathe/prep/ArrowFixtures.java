package ai.lathe.prep;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.ipc.ArrowStreamWriter;
import org.apache.arrow.vector.ipc.ArrowWriter;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/** Arrow test inputs written with Arrow Java, and their JSON-lines twins. */
final class ArrowFixtures {
  static final ObjectMapper JSON = new ObjectMapper();

  private ArrowFixtures() {}

  static Field utf8(String name) {
    return new Field(name, FieldType.nullable(new ArrowType.Utf8()), null);
  }

  static Field int64(String name) {
    return new Field(name, FieldType.nullable(new ArrowType.Int(64, true)), null);
  }

  static Field bool(String name) {
    return new Field(name, FieldType.nullable(ArrowType.Bool.INSTANCE), null);
  }

  /** list<struct<role: string, content: string>>, the chat-messages column of HF datasets. */
  static Field messages(String name) {
    Field turn = new Field("item", FieldType.nullable(ArrowType.Struct.INSTANCE), List.of(utf8("role"), utf8("content")));
    return new Field(name, FieldType.nullable(ArrowType.List.INSTANCE), List.of(turn));
  }

  /** An ordered row: keys and values in schema order (nulls included, as Arrow has them). */
  static Map<String, Object> row(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }

  static List<Object> turns(String... roleContent) {
    List<Object> out = new ArrayList<>();
    for (int i = 0; i < roleContent.length; i += 2) {
      out.add(row("role", roleContent[i], "content", roleContent[i + 1]));
    }
    return out;
  }

  /** Writes rows as an Arrow stream (or file format), in batches of batch rows. */
  static void write(Path file, Schema schema, List<Map<String, Object>> rows, boolean fileFormat, int batch)
      throws Exception {
    try (BufferAllocator a = new RootAllocator();
        VectorSchemaRoot root = VectorSchemaRoot.create(schema, a);
        OutputStream os = Files.newOutputStream(file);
        ArrowWriter w = fileFormat ? new ArrowFileWriter(root, null, Channels.newChannel(os))
            : new ArrowStreamWriter(root, null, Channels.newChannel(os))) {
      w.start();
      for (int from = 0; from < rows.size(); from += batch) {
        List<Map<String, Object>> part = rows.subList(from, Math.min(rows.size(), from + batch));
        root.allocateNew();
        for (int i = 0; i < part.size(); i++) {
          for (FieldVector v : root.getFieldVectors()) {
            fill(v, i, part.get(i).get(v.getName()));
          }
        }
        root.setRowCount(part.size());
        w.writeBatch();
      }
      w.end();
    }
  }

  @SuppressWarnings("unchecked")
  static void fill(FieldVector v, int i, Object x) {
    if (x == null) {
      if (v instanceof StructVector s) {
        s.setNull(i);
      } else if (v instanceof ListVector l) {
        l.setNull(i);
      } else {
        v.setNull(i);
      }
    } else if (v instanceof VarCharVector s) {
      s.setSafe(i, ((String) x).getBytes(StandardCharsets.UTF_8));
    } else if (v instanceof BigIntVector n) {
      n.setSafe(i, ((Number) x).longValue());
    } else if (v instanceof BitVector b) {
      b.setSafe(i, (Boolean) x ? 1 : 0);
    } else if (v instanceof StructVector s) {
      s.setIndexDefined(i);
      for (FieldVector c : s.getChildrenFromFields()) {
        fill(c, i, ((Map<String, Object>) x).get(c.getName()));
      }
    } else if (v instanceof ListVector l) {
      List<Object> xs = (List<Object>) x;
      int off = l.startNewValue(i);
      for (int j = 0; j < xs.size(); j++) {
        fill(l.getDataVector(), off + j, xs.get(j));
      }
      l.endValue(i, xs.size());
    } else {
      throw new IllegalArgumentException("fixture cannot fill " + v.getField());
    }
  }

  /** The JSON-lines twin of rows. */
  static void writeJsonl(Path file, List<Map<String, Object>> rows) throws Exception {
    StringBuilder sb = new StringBuilder();
    for (Map<String, Object> r : rows) {
      sb.append(JSON.writeValueAsString(r)).append('\n');
    }
    Files.writeString(file, sb.toString());
  }

  /** A save_to_disk folder: the shards, state.json listing them, dataset_info.json. */
  static void hfFolder(Path dir, Schema schema, List<List<Map<String, Object>>> shards) throws Exception {
    Files.createDirectories(dir);
    StringBuilder files = new StringBuilder();
    for (int s = 0; s < shards.size(); s++) {
      String name = String.format("data-%05d-of-%05d.arrow", s, shards.size());
      write(dir.resolve(name), schema, shards.get(s), false, 2);
      files.append(s == 0 ? "" : ", ").append("{\"filename\": \"").append(name).append("\"}");
    }
    Files.writeString(dir.resolve("state.json"), "{\"_data_files\": [" + files + "], \"_fingerprint\": \"abc\","
        + " \"_format_columns\": null, \"_format_kwargs\": {}, \"_format_type\": null, \"_output_all_columns\": false,"
        + " \"_split\": null}");
    Files.writeString(dir.resolve("dataset_info.json"), "{\"citation\": \"\", \"description\": \"\", \"features\": {}}");
  }
}
