package ai.lathe.prep;

import ai.lathe.model.cli.Args;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowStreamWriter;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.spark.Partitioner;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.StructType;
import scala.Tuple2;

/**
 * Prepared data (the output of lathe prep) as a Hugging Face save_to_disk folder that
 * datasets.load_from_disk reads: per split, Arrow IPC stream shards data-NNNNN-of-NNNNN.arrow
 * (rows sorted by id, the features in the schema's "huggingface" metadata), dataset_info.json
 * with the features and state.json listing the shards. Written to a hidden sibling and renamed
 * into place: a failure leaves no output.
 */
public final class HfExport {
  public static final String USAGE = """
      usage: lathe export-hf --input PREPARED_DIR --output DIR [--split NAME] [--shards N] [--overwrite]
        Writes the output of lathe prep (SFT, preference or KTO) as a Hugging Face save_to_disk
        folder: without --split a DatasetDict (dataset_dict.json and a folder per split), with
        --split that split's Dataset folder. Each holds data-NNNNN-of-NNNNN.arrow (Arrow IPC
        streams, rows sorted by id), dataset_info.json (features) and state.json.
        --shards: files per split (default: one per 256 MiB of prepared Parquet).""";

  static final long SHARD_BYTES = 256L << 20;
  static final int BATCH_ROWS = 1000;

  private HfExport() {}

  public static int run(String[] argv) {
    if (List.of(argv).contains("--help")) {
      System.out.println(USAGE);
      return 0;
    }
    String input;
    String output;
    Args a;
    try {
      a = new Args("export-hf", argv, Set.of("overwrite")).allow(Set.of("input", "output", "split", "shards"));
      input = a.need("input");
      output = a.need("output");
    } catch (Args.UsageException e) {
      System.err.println("lathe " + e.getMessage());
      System.err.println(USAGE);
      return 2;
    }
    SparkSession spark = null;
    try {
      spark = SparkSession.builder().appName("lathe-export-hf").getOrCreate();
      Map<String, Long> rows = export(spark, input, output, a.str("split", null), a.integer("shards", 0),
          a.flag("overwrite"));
      System.out.printf("export-hf: wrote %s %s%n", output, rows);
      return 0;
    } catch (Exception e) {
      return JobMain.fail("export-hf", e, output);
    } finally {
      if (spark != null) {
        spark.stop();
      }
    }
  }

  /** Exports; returns the rows written per split. shards 0 = by size. */
  public static Map<String, Long> export(SparkSession spark, String input, String output, String split, int shards,
      boolean overwrite) throws Exception {
    Configuration hconf = spark.sparkContext().hadoopConfiguration();
    String manifestPath = input + "/manifest.json";
    if (!HadoopIo.exists(manifestPath, hconf)) {
      throw new IllegalArgumentException(input + ": not an output of lathe prep (no manifest.json)");
    }
    String manifest = HadoopIo.readString(manifestPath, hconf);
    String kind = HfFeatures.JSON.readTree(manifest).path("kind").asText();
    StructType schema = switch (kind) {
      case "sft" -> Schemas.SFT;
      case "preference" -> Schemas.PREFERENCE;
      case "kto" -> Schemas.KTO;
      default -> throw new IllegalArgumentException(input + ": manifest kind '" + kind
          + "' is not prepared training data (sft, preference, kto)");
    };
    if (HadoopIo.exists(output, hconf) && !overwrite) {
      throw new IllegalArgumentException(output + ": exists; --overwrite replaces it");
    }
    Dataset<Row> data = spark.read().parquet(input + "/data")
        .select(java.util.Arrays.stream(schema.fieldNames()).map(functions::col).toArray(org.apache.spark.sql.Column[]::new));
    List<String> splits = new ArrayList<>();
    if (split != null) {
      splits.add(split);
    } else {
      data.select("split").distinct().collectAsList().forEach(r -> splits.add(r.getString(0)));
      splits.sort(null);
    }
    String tmp = HadoopIo.tempSibling(output);
    Map<String, Long> counts = new LinkedHashMap<>();
    try {
      for (String s : splits) {
        String dir = split != null ? tmp : tmp + "/" + s;
        int n = shards > 0 ? shards : shardsBySize(input, s, hconf);
        long rows = writeSplit(data.filter(functions.col("split").equalTo(s)), schema, dir, n, hconf);
        if (rows == 0 && split != null) {
          throw new IllegalArgumentException(input + ": no rows in split '" + s + "'; nothing written");
        }
        writeMetadata(dir, schema, n, s, PrepJob.sha256(manifest + "\n" + s).substring(0, 16), input, hconf);
        counts.put(s, rows);
      }
      if (split == null) {
        ObjectNode dict = HfFeatures.JSON.createObjectNode();
        ArrayNode names = dict.putArray("splits");
        splits.forEach(names::add);
        HadoopIo.writeString(tmp + "/dataset_dict.json", dict.toString(), hconf);
      }
      HadoopIo.commit(tmp, output, hconf);
    } catch (Exception e) {
      HadoopIo.deleteQuietly(tmp, hconf);
      throw e;
    }
    return counts;
  }

  static int shardsBySize(String input, String split, Configuration hconf) throws java.io.IOException {
    Path glob = new Path(input + "/data/*/split=" + split + "/*.parquet");
    FileStatus[] files = glob.getFileSystem(hconf).globStatus(glob);
    long bytes = 0;
    for (FileStatus f : files == null ? new FileStatus[0] : files) {
      bytes += f.getLen();
    }
    return (int) Math.max(1, (bytes + SHARD_BYTES - 1) / SHARD_BYTES);
  }

  /** Writes n shards of rows (sorted by id, contiguous runs of equal size) as Arrow streams; returns the row count. */
  static long writeSplit(Dataset<Row> rows, StructType schema, String dir, int n, Configuration hconf) {
    ArrowInput.Conf conf = new ArrowInput.Conf(hconf);
    JavaPairRDD<Long, Row> indexed = rows.orderBy("id").javaRDD().zipWithIndex()
        .mapToPair(t -> new Tuple2<>(t._2(), t._1()));
    long total = indexed.count();
    List<Long> counts = indexed.repartitionAndSortWithinPartitions(new Contiguous(n, total)).values()
        .mapPartitionsWithIndex((idx, it) -> List.of(writeShard(schema, String.format("%s/data-%05d-of-%05d.arrow",
            dir, idx, n), it, conf.get())).iterator(), false).collect();
    return counts.stream().mapToLong(Long::longValue).sum();
  }

  /** Row index i of total goes to shard i * n / total: n contiguous runs, in order. */
  static final class Contiguous extends Partitioner {
    private final int n;
    private final long total;

    Contiguous(int n, long total) {
      this.n = n;
      this.total = Math.max(1, total);
    }

    @Override
    public int numPartitions() {
      return n;
    }

    @Override
    public int getPartition(Object key) {
      return (int) Math.min(n - 1, (Long) key * n / total);
    }
  }

  static long writeShard(StructType schema, String file, Iterator<Row> rows, Configuration conf) throws Exception {
    Path p = new Path(file);
    long total = 0;
    try (BufferAllocator a = new RootAllocator();
        VectorSchemaRoot root = VectorSchemaRoot.create(HfFeatures.arrowSchema(schema), a);
        OutputStream os = p.getFileSystem(conf).create(p, false);
        ArrowStreamWriter w = new ArrowStreamWriter(root, null, Channels.newChannel(os))) {
      w.start();
      int i = 0;
      root.allocateNew();
      while (rows.hasNext()) {
        Row r = rows.next();
        for (int c = 0; c < schema.size(); c++) {
          HfFeatures.set(root.getVector(c), i, r.get(c));
        }
        total++;
        if (++i == BATCH_ROWS || !rows.hasNext()) {
          root.setRowCount(i);
          w.writeBatch();
          root.allocateNew();
          i = 0;
        }
      }
      w.end();
    }
    return total;
  }

  /** state.json and dataset_info.json of one split's folder, in the layouts datasets writes. */
  static void writeMetadata(String dir, StructType schema, int n, String split, String fingerprint, String input,
      Configuration hconf) throws Exception {
    ObjectNode state = HfFeatures.JSON.createObjectNode();
    ArrayNode files = state.putArray("_data_files");
    for (int i = 0; i < n; i++) {
      files.addObject().put("filename", String.format("data-%05d-of-%05d.arrow", i, n));
    }
    state.put("_fingerprint", fingerprint);
    state.putNull("_format_columns");
    state.putObject("_format_kwargs");
    state.putNull("_format_type");
    state.put("_output_all_columns", false);
    state.put("_split", split);
    ObjectNode info = HfFeatures.JSON.createObjectNode();
    info.put("citation", "");
    info.put("description", "Prepared by Lathe from " + input + " (split " + split + ")");
    info.set("features", HfFeatures.features(schema));
    info.put("homepage", "");
    info.put("license", "");
    var writer = HfFeatures.JSON.writer().with(SerializationFeature.INDENT_OUTPUT);
    HadoopIo.writeString(dir + "/state.json", writer.writeValueAsString(state), hconf);
    HadoopIo.writeString(dir + "/dataset_info.json", writer.writeValueAsString(info), hconf);
  }
}
