package ai.lathe.jobs;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.prep.HadoopIo;
import ai.lathe.prep.PreparedRow;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.SparkSession;

/** Reading prepared Parquet for training, and the checks done on the driver before any task runs. */
public final class PreparedData {
  private PreparedData() {}

  /** Checks the data folder (manifest, schema version) and that the model's tokenizer made it. */
  public static JsonNode checkManifest(String data, String model, Configuration conf) throws IOException {
    return checkManifest(data, model, conf, "sft", Schemas.SFT_SCHEMA_VERSION);
  }

  /** As above for data of the given kind and schema version. */
  public static JsonNode checkManifest(String data, String model, Configuration conf, String kind, int version)
      throws IOException {
    if (!HadoopIo.exists(data, conf)) {
      throw new IllegalArgumentException(data + ": prepared data not found");
    }
    String mpath = data + "/manifest.json";
    if (!HadoopIo.exists(mpath, conf)) {
      throw new IllegalArgumentException(mpath + ": not found (is " + data + " the output of lathe prep?)");
    }
    JsonNode m = new ObjectMapper().readTree(HadoopIo.readString(mpath, conf));
    int v = m.path("schema_version").asInt(-1);
    if (v != version || !m.path("kind").asText().equals(kind)) {
      throw new IllegalArgumentException(mpath + ": schema_version " + v + " of kind '" + m.path("kind").asText()
          + "' is not readable here (this job reads " + kind + " data, schema version " + version + ")");
    }
    String tok = model + "/tokenizer.json";
    if (!HadoopIo.exists(tok, conf)) {
      throw new IllegalArgumentException(tok + ": not found");
    }
    String sha = sha256(tok, conf);
    if (!sha.equals(m.path("tokenizer_sha256").asText())) {
      throw new IllegalArgumentException(data + " was tokenised with a different tokenizer (sha256 "
          + m.path("tokenizer_sha256").asText() + ") than " + tok + " (sha256 " + sha + ")");
    }
    return m;
  }

  public static LlamaConfig modelConfig(String model, Configuration conf) throws IOException {
    String p = model + "/config.json";
    if (!HadoopIo.exists(p, conf)) {
      throw new IllegalArgumentException(p + ": model config not found");
    }
    try {
      return LlamaConfig.fromJson(new ObjectMapper().readTree(HadoopIo.readString(p, conf)));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(p + ": " + e.getMessage(), e);
    }
  }

  static String sha256(String path, Configuration conf) throws IOException {
    org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(path);
    try (InputStream in = p.getFileSystem(conf).open(p)) {
      return ai.lathe.model.io.Hashing.sha256(in);
    }
  }

  /** Rows of one split, of the given languages (all when empty). */
  public static JavaRDD<PreparedRow> examples(SparkSession spark, String data, String split, java.util.List<String> langs) {
    var df = spark.read().parquet(data + "/data").where(org.apache.spark.sql.functions.col("split").equalTo(split));
    if (!langs.isEmpty()) {
      df = df.where(org.apache.spark.sql.functions.col("lang").isin(langs.toArray()));
    }
    return df.javaRDD().map(Schemas::fromRow);
  }

  public static Tokens tokens(PreparedRow r) {
    return tokens(r.inputIds(), r.lossMask(), r.positionIds());
  }

  /** Positions are kept only for packed rows (a restart at 0 after the first token). */
  static Tokens tokens(int[] ids, boolean[] mask, int[] pos) {
    boolean packed = false;
    for (int i = 1; i < pos.length; i++) {
      packed |= pos[i] == 0;
    }
    return new Tokens(ids, mask, packed ? pos : null);
  }

  static final java.util.List<String> TOKEN_COLUMNS = java.util.List.of("id", "input_ids", "loss_mask", "position_ids");

  /**
   * (id, tokens) of one split's rows, read from the columnar batches of the Parquet scan (the
   * split and language filters prune partitions), arrays copied in bulk, no Row per row.
   */
  static JavaRDD<scala.Tuple2<String, Tokens>> tokenRows(SparkSession spark, String data, String split,
      java.util.List<String> langs) {
    var df = spark.read().parquet(data + "/data").where(org.apache.spark.sql.functions.col("split").equalTo(split));
    if (!langs.isEmpty()) {
      df = df.where(org.apache.spark.sql.functions.col("lang").isin(langs.toArray()));
    }
    return ColumnarRows.map(df, TOKEN_COLUMNS, (r, c) -> new scala.Tuple2<>(r.getUTF8String(c[0]).toString(),
        tokens(r.getArray(c[1]).toIntArray(), r.getArray(c[2]).toBooleanArray(), r.getArray(c[3]).toIntArray())));
  }

  /** Bytes of the frozen weights in fp32. */
  /**
   * Bytes per stored weight, from config.json's torch_dtype: 2 for bfloat16/float16 checkpoints
   * (held as loaded), else 4.
   */
  public static int weightBytes(String model, Configuration conf) throws IOException {
    String dt = new ObjectMapper().readTree(HadoopIo.readString(model + "/config.json", conf)).path("torch_dtype")
        .asText("float32");
    return dt.equals("bfloat16") || dt.equals("float16") ? 2 : 4;
  }

  public static long estimateFrozenBytes(LlamaConfig c) {
    return 4L * c.parameterCount();
  }

  /**
   * Bytes of the frozen weights as held: fp32, or NF4 projections (0.5625 bytes/param, 0.516 with
   * double quantisation) plus dense embeddings and head, plus one thread's dequantisation scratch
   * (each distinct projection shape in fp32).
   */
  public static long estimateFrozenBytes(LlamaConfig c, String quant) {
    if (quant.equals("none")) {
      return estimateFrozenBytes(c);
    }
    long proj = 0;
    long scratch = 0;
    java.util.Set<String> shapes = new java.util.HashSet<>();
    for (String m : ai.lathe.model.LlamaWeights.MODULES) {
      int[] s = c.moduleShape(m);
      proj += (long) s[0] * s[1];
      if (shapes.add(s[0] + "x" + s[1])) {
        scratch += 4L * s[0] * s[1];
      }
    }
    long dense = 4L * c.parameterCount() - 4L * proj * c.numLayers();
    return dense + (long) (proj * c.numLayers() * (quant.equals("nf4-dq") ? 0.517 : 0.5625)) + scratch;
  }
}
