package ai.lathe.prep;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.arrow.compression.CommonsCompressionFactory;
import org.apache.arrow.flatbuf.Message;
import org.apache.arrow.flatbuf.MessageHeader;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.ArrowReader;
import org.apache.arrow.vector.ipc.ArrowStreamReader;
import org.apache.arrow.vector.ipc.message.ArrowBlock;
import org.apache.arrow.vector.ipc.message.MessageSerializer;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Arrow IPC input for prep (input_type arrow and hf-datasets), on any Hadoop file system: the
 * shards a Hugging Face save_to_disk folder lists, a structural check of each file on the driver
 * (before anything runs or is written), and the rows of a file as JSON lines on the executors.
 * A file starting with the ARROW1 magic is the IPC file format; any other is read as a stream.
 */
final class ArrowInput {
  private static final byte[] MAGIC = "ARROW1".getBytes(StandardCharsets.US_ASCII);

  private ArrowInput() {}

  /** A Hadoop configuration that travels to the executors (it is not Serializable itself). */
  static final class Conf implements Serializable {
    private final byte[] bytes;

    Conf(Configuration c) {
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      try (DataOutputStream out = new DataOutputStream(b)) {
        c.write(out);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
      bytes = b.toByteArray();
    }

    Configuration get() {
      Configuration c = new Configuration(false);
      try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
        c.readFields(in);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
      return c;
    }
  }

  /**
   * The data files of a save_to_disk folder (or of every folder a glob matches), in the order
   * state.json's _data_files lists them; a listed file that is missing, or a name that is not a
   * plain file name, fails naming state.json and the file.
   */
  static List<FileStatus> hfShards(String path, Configuration conf) throws IOException {
    Path p = new Path(path);
    FileSystem fs = p.getFileSystem(conf);
    FileStatus[] dirs = fs.globStatus(p);
    if (dirs == null || dirs.length == 0) {
      throw new IOException(path + ": input not found");
    }
    List<FileStatus> out = new ArrayList<>();
    for (FileStatus d : dirs) {
      Path dir = d.getPath();
      Path state = new Path(dir, "state.json");
      if (!d.isDirectory() || !fs.exists(state)) {
        Path dict = new Path(dir, "dataset_dict.json");
        if (d.isDirectory() && fs.exists(dict)) {
          throw new IllegalArgumentException(dir + ": a DatasetDict folder (" + HadoopIo.readString(dict.toString(), conf)
              .strip() + "); give one split's folder as input, e.g. " + dir + "/train");
        }
        throw new IllegalArgumentException(dir + ": not a Hugging Face save_to_disk folder (no state.json);"
            + " input_type arrow reads plain Arrow files");
      }
      JsonNode files;
      try {
        files = new ObjectMapper().readTree(HadoopIo.readString(state.toString(), conf)).path("_data_files");
      } catch (IOException e) {
        throw new IllegalArgumentException(state + ": not valid JSON: " + e.getMessage());
      }
      if (!files.isArray() || files.isEmpty()) {
        throw new IllegalArgumentException(state + ": no _data_files list");
      }
      for (JsonNode f : files) {
        String name = f.path("filename").asText("");
        if (name.isEmpty() || name.contains("/") || name.contains("\\") || name.equals("..") || name.equals(".")) {
          throw new IllegalArgumentException(state + ": _data_files entry " + f + " is not a plain file name");
        }
        Path shard = new Path(dir, name);
        if (!fs.exists(shard)) {
          throw new IllegalArgumentException(state + " lists " + name + ", which does not exist in " + dir
              + "; nothing written");
        }
        out.add(fs.getFileStatus(shard));
      }
    }
    return out;
  }

  /** The top-level columns a format needs (after fields: renames); any one of a group will do. */
  static List<List<String>> required(PrepOptions o) {
    List<List<String>> need = new ArrayList<>();
    List<String> names = switch (o.format()) {
      case "alpaca" -> List.of("instruction", "output");
      case "prompt-completion" -> List.of("prompt", "completion");
      case "preference" -> List.of("chosen", "rejected");
      case "kto" -> List.of("prompt", "completion", "label");
      default -> List.of("messages");
    };
    for (String n : names) {
      String renamed = o.fields().getOrDefault(n, n);
      need.add(n.equals("messages") && o.fields().isEmpty() ? List.of(renamed, "conversations") : List.of(renamed));
    }
    return need;
  }

  /**
   * Checks a file before anything runs: an Arrow stream or file whose messages all lie within
   * it (a stream must end with the end-of-stream marker, a file with its ARROW1 footer), and whose
   * schema has the format's columns in types that convert to JSON. Fails naming the file.
   */
  static Schema check(FileStatus f, Configuration conf, PrepOptions o) throws IOException {
    Path p = f.getPath();
    Schema schema;
    try (FSDataInputStream in = p.getFileSystem(conf).open(p)) {
      schema = isFileFormat(in, f.getLen()) ? checkFile(p, in, f.getLen()) : checkStream(p, in, f.getLen());
    }
    for (List<String> group : required(o)) {
      Field col = group.stream().map(n -> schema.getFields().stream().filter(x -> x.getName().equals(n)).findFirst()
          .orElse(null)).filter(x -> x != null).findFirst().orElse(null);
      if (col == null) {
        throw new IllegalArgumentException(p + ": the Arrow schema has no column '" + String.join("' or '", group)
            + "' (format " + o.format() + "; columns: " + schema.getFields().stream().map(Field::getName).toList()
            + "); nothing written");
      }
      if (!ArrowJson.supported(col)) {
        throw new IllegalArgumentException(p + ": column '" + col.getName() + "' has Arrow type " + col
            + ", which prep cannot read as JSON; nothing written");
      }
    }
    return schema;
  }

  private static boolean isFileFormat(FSDataInputStream in, long len) throws IOException {
    if (len < MAGIC.length) {
      return false;
    }
    byte[] head = new byte[MAGIC.length];
    in.readFully(0, head);
    return Arrays.equals(head, MAGIC);
  }

  private static Schema checkStream(Path p, FSDataInputStream in, long len) throws IOException {
    long pos = 0;
    Schema schema = null;
    while (true) {
      if (pos + 4 > len) {
        throw new IllegalArgumentException(p + ": truncated Arrow stream (" + len + " bytes, no end-of-stream marker)"
            + "; nothing written");
      }
      int n = intAt(in, pos);
      pos += 4;
      if (n == -1) { // continuation marker, then the length
        n = pos + 4 > len ? Integer.MIN_VALUE : intAt(in, pos);
        pos += 4;
      }
      if (n == 0) {
        break; // end-of-stream marker
      }
      if (n < 0 || pos + n > len) {
        throw notArrowOrTruncated(p, schema, pos - 4, len);
      }
      byte[] meta = new byte[n];
      in.readFully(pos, meta);
      pos += n;
      long body;
      try {
        Message m = Message.getRootAsMessage(ByteBuffer.wrap(meta));
        if (schema == null) {
          if (m.headerType() != MessageHeader.Schema) {
            throw new IllegalArgumentException("no schema");
          }
          schema = MessageSerializer.deserializeSchema(m);
        }
        body = m.bodyLength();
      } catch (RuntimeException e) {
        throw notArrowOrTruncated(p, schema, pos - n, len);
      }
      if (body < 0 || pos + body > len) {
        throw notArrowOrTruncated(p, schema, pos, len);
      }
      pos += body;
    }
    if (schema == null) {
      throw new IllegalArgumentException(p + ": an Arrow stream without a schema; nothing written");
    }
    return schema;
  }

  private static IllegalArgumentException notArrowOrTruncated(Path p, Schema schema, long at, long len) {
    return new IllegalArgumentException(schema == null
        ? p + ": not an Arrow IPC file (no ARROW1 magic, no stream schema); nothing written"
        : p + ": truncated Arrow stream (the message at byte " + at + " runs past its end, " + len + " bytes)"
            + "; nothing written");
  }

  private static int intAt(FSDataInputStream in, long pos) throws IOException {
    byte[] b = new byte[4];
    in.readFully(pos, b);
    return ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt();
  }

  private static Schema checkFile(Path p, FSDataInputStream in, long len) throws IOException {
    byte[] tail = new byte[MAGIC.length];
    if (len >= 2L * MAGIC.length + 6) {
      in.readFully(len - MAGIC.length, tail);
    }
    if (!Arrays.equals(tail, MAGIC)) {
      throw new IllegalArgumentException(p + ": truncated Arrow file (no ARROW1 footer at its end); nothing written");
    }
    try (BufferAllocator a = new RootAllocator();
        ArrowFileReader r = new ArrowFileReader(new Channel(in, len), a, CommonsCompressionFactory.INSTANCE)) {
      Schema schema = r.getVectorSchemaRoot().getSchema();
      for (ArrowBlock b : r.getRecordBlocks()) {
        if (b.getOffset() < 0 || b.getOffset() + b.getMetadataLength() + b.getBodyLength() > len) {
          throw new IllegalArgumentException(p + ": damaged Arrow file (a record batch lies past its end); nothing written");
        }
      }
      return schema;
    } catch (IOException | RuntimeException e) {
      if (e instanceof IllegalArgumentException iae && iae.getMessage() != null && iae.getMessage().startsWith(p + ":")) {
        throw iae;
      }
      throw new IllegalArgumentException(p + ": damaged Arrow file footer (" + e.getMessage() + "); nothing written");
    }
  }

  /** The rows of one Arrow file as JSON lines (1-based row numbers), read batch by batch. */
  static Iterator<PrepJob.Line> lines(String file, Configuration conf) throws IOException {
    Path p = new Path(file);
    FileStatus st = p.getFileSystem(conf).getFileStatus(p);
    FSDataInputStream in = p.getFileSystem(conf).open(p);
    BufferAllocator a = new RootAllocator();
    ArrowReader r = isFileFormat(in, st.getLen())
        ? new ArrowFileReader(new Channel(in, st.getLen()), a, CommonsCompressionFactory.INSTANCE)
        : new ArrowStreamReader(in, a, CommonsCompressionFactory.INSTANCE);
    Rows rows = new Rows(file, in, a, r);
    org.apache.spark.TaskContext tc = org.apache.spark.TaskContext.get();
    if (tc != null) {
      tc.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) ctx -> rows.close());
    }
    return rows;
  }

  /** Iterates a reader's rows; closes everything at the end (or when the task completes). */
  private static final class Rows implements Iterator<PrepJob.Line> {
    private final String file;
    private final FSDataInputStream in;
    private final BufferAllocator alloc;
    private final ArrowReader reader;
    private List<FieldVector> cols = List.of();
    private int i;
    private int n;
    private long line;
    private boolean done;

    Rows(String file, FSDataInputStream in, BufferAllocator alloc, ArrowReader reader) {
      this.file = file;
      this.in = in;
      this.alloc = alloc;
      this.reader = reader;
    }

    @Override
    public boolean hasNext() {
      while (!done && i >= n) {
        try {
          if (reader.loadNextBatch()) {
            cols = ArrowJson.columns(reader.getVectorSchemaRoot());
            n = reader.getVectorSchemaRoot().getRowCount();
            i = 0;
          } else {
            close();
          }
        } catch (IOException | RuntimeException e) {
          close();
          throw new IllegalArgumentException(file + ": unreadable Arrow data after row " + line + " (" + e.getMessage()
              + "); nothing written", e);
        }
      }
      return !done;
    }

    @Override
    public PrepJob.Line next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      try {
        byte[] json = ArrowJson.row(cols, i++);
        return new PrepJob.Line(file, ++line, json);
      } catch (IOException e) {
        throw new IllegalStateException(file + ": row " + (line + 1) + ": " + e.getMessage(), e);
      }
    }

    synchronized void close() {
      if (done) {
        return;
      }
      done = true;
      try {
        reader.close();
        in.close();
      } catch (IOException e) {
        // the rows are read; a failed close loses nothing
      } finally {
        alloc.close();
      }
    }
  }

  /** A seekable channel over a Hadoop input stream (what ArrowFileReader reads). */
  private static final class Channel implements SeekableByteChannel {
    private final FSDataInputStream in;
    private final long size;
    private long pos;

    Channel(FSDataInputStream in, long size) {
      this.in = in;
      this.size = size;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      if (pos >= size) {
        return -1;
      }
      int want = (int) Math.min(dst.remaining(), size - pos);
      byte[] b = new byte[want];
      in.readFully(pos, b);
      dst.put(b);
      pos += want;
      return want;
    }

    @Override
    public int write(ByteBuffer src) {
      throw new UnsupportedOperationException("read-only");
    }

    @Override
    public long position() {
      return pos;
    }

    @Override
    public SeekableByteChannel position(long p) {
      pos = p;
      return this;
    }

    @Override
    public long size() {
      return size;
    }

    @Override
    public SeekableByteChannel truncate(long s) {
      throw new UnsupportedOperationException("read-only");
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public void close() {}
  }
}
