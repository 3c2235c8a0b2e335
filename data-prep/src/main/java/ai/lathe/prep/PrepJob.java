package ai.lathe.prep;

import ai.lathe.model.Config;
import ai.lathe.model.Faults;
import ai.lathe.model.Version;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.HfTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.Serializable;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapred.TextInputFormat;
import org.apache.spark.SparkFiles;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * Instruction data (Alpaca, chat messages, prompt/completion; JSON lines or Parquet) into
 * validated, normalised, deduplicated, chat-templated, tokenised Parquet partitioned by lang and
 * split, with a manifest, rejects and _SUCCESS, committed atomically.
 * {@code spark-submit --class ai.lathe.prep.PrepJob lathe-jobs.jar --config conf/prep.yaml}.
 */
public final class PrepJob {
  public static final String USAGE = """
      usage: lathe prep --config conf/prep.yaml [--set key=value ...]
             lathe prep --input PATH --format alpaca|messages|prompt-completion --tokenizer MODEL_DIR
                        --output DIR [--config prep.yaml] [--set key=value ...]
        Input (input_type): jsonl, parquet, arrow (Arrow IPC stream or file) or hf-datasets
        (a Hugging Face save_to_disk folder).
        Validates, normalises (NFC), deduplicates, splits (by a hash of the content id),
        chat-templates and tokenises instruction data into Parquet partitioned by lang and split,
        with manifest.json, rejects/ and _SUCCESS, committed atomically.""";

  private PrepJob() {}

  /** One input line: file, 1-based line (row) number, raw bytes. */
  record Line(String file, long line, byte[] raw) implements Serializable {}

  /** A row after cleaning: either clean or rejected. */
  record Stage(String file, long line, RowTransforms.Clean clean, String reason, String raw) implements Serializable {}

  /** The counts a run reports. */
  public record Result(long inputRows, long rejected, long duplicates, long nearDuplicates, long replayRows,
      long truncated, Map<String, Long> rows, Map<String, Long> rejectReasons, long tokens,
      double tokeniseTaskSeconds) {}

  /**
   * Sends the tokenizer (and its config) to the executors; returns its file name there (for
   * SparkFiles.get) and its SHA-256 for the manifest.
   */
  static String[] shipTokenizer(SparkSession spark, PrepOptions o) throws java.io.IOException {
    java.nio.file.Path tokFile = java.nio.file.Path.of(o.tokenizer());
    if (Files.isDirectory(tokFile)) {
      tokFile = tokFile.resolve("tokenizer.json");
    }
    String sha;
    try (HfTokenizer tok = HfTokenizer.open(tokFile)) {
      sha = tok.sha256();
    }
    spark.sparkContext().addFile(tokFile.toString());
    java.nio.file.Path tokCfg = tokFile.resolveSibling("tokenizer_config.json");
    if (Files.exists(tokCfg)) {
      spark.sparkContext().addFile(tokCfg.toString());
    }
    return new String[] {tokFile.getFileName().toString(), sha};
  }

  /**
   * The input files of prep: for input_type hf-datasets the shards each save_to_disk folder's
   * state.json lists, else the files of each path or glob. Arrow inputs (arrow, hf-datasets) are
   * checked here on the driver, before anything runs: each file's structure and its schema against
   * the format's columns; a bad one fails naming it.
   */
  static List<FileStatus> listInputs(PrepOptions o, Configuration hconf) throws java.io.IOException {
    List<FileStatus> files = new ArrayList<>();
    for (String in : o.inputs()) {
      files.addAll(inputFiles(in, o.inputType(), hconf));
    }
    if (o.inputType().equals("arrow") || o.inputType().equals("hf-datasets")) {
      for (FileStatus f : files) {
        ArrowInput.check(f, hconf, o);
      }
    }
    return files;
  }

  /** The files one input path stands for under an input type. */
  static List<FileStatus> inputFiles(String path, String type, Configuration hconf) throws java.io.IOException {
    return type.equals("hf-datasets") ? ArrowInput.hfShards(path, hconf) : HadoopIo.listInputs(path, hconf);
  }

  /** Fails the job, before anything is written, when too many rows were rejected. */
  static void checkRejects(long rejected, long inputRows, PrepOptions o, Map<String, Long> reasons) {
    if (inputRows > 0 && rejected > o.maxRejectFraction() * inputRows) {
      throw new IllegalArgumentException(String.format("%d of %d rows rejected (%.1f%%), above max_reject_fraction"
          + " %.3f; reasons: %s; nothing written", rejected, inputRows, 100.0 * rejected / inputRows,
          o.maxRejectFraction(), reasons));
    }
  }

  /**
   * Writes a prep output (data by lang/split sorted by id, rejects, manifest, _SUCCESS) to a hidden
   * sibling and renames it into place; on any failure the sibling is removed and the previous
   * output stays as it was.
   */
  static void commit(SparkSession spark, PrepOptions o, Dataset<Row> data, JavaRDD<Row> rejects, String manifest)
      throws Exception {
    Configuration hconf = spark.sparkContext().hadoopConfiguration();
    String tmp = HadoopIo.tempSibling(o.output());
    try {
      data.repartition(Math.max(1, o.partitions()), data.col("lang"), data.col("split"))
          .sortWithinPartitions("lang", "split", "id")
          .write().mode(SaveMode.ErrorIfExists).partitionBy("lang", "split").parquet(tmp + "/data");
      spark.createDataFrame(rejects, Schemas.REJECTS).coalesce(1).sortWithinPartitions("file", "line").write()
          .mode(SaveMode.ErrorIfExists).parquet(tmp + "/rejects");
      HadoopIo.writeString(tmp + "/manifest.json", manifest, hconf);
      HadoopIo.writeString(tmp + "/_SUCCESS", "", hconf);
      Faults.at(Faults.PREP_BEFORE_COMMIT, 0, 0);
      HadoopIo.commit(tmp, o.output(), hconf);
    } catch (Exception e) {
      HadoopIo.deleteQuietly(tmp, hconf);
      throw e;
    }
  }

  /** Marks a replay row in Stage.raw (never set on clean rows otherwise). */
  static final String REPLAY = "\u0000replay";

  /** Each line (row) of the input files tagged with its file and 1-based number. */
  static JavaRDD<Line> ingest(SparkSession spark, JavaSparkContext jsc, List<FileStatus> files, String type) {
    JavaRDD<Line> lines = null;
    for (FileStatus f : files) {
      String name = f.getPath().toString();
      JavaRDD<Line> part;
      if (type.equals("arrow") || type.equals("hf-datasets")) {
        continue; // below: one task per file
      } else if (type.equals("parquet")) {
        part = spark.read().parquet(name).toJSON().javaRDD().zipWithIndex()
            .map(t -> new Line(name, t._2() + 1, t._1().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
      } else {
        part = jsc.hadoopFile(name, TextInputFormat.class, LongWritable.class, Text.class)
            .map(t -> t._2().copyBytes()).zipWithIndex().map(t -> new Line(name, t._2() + 1, t._1()));
      }
      lines = lines == null ? part : lines.union(part);
    }
    if (type.equals("arrow") || type.equals("hf-datasets")) {
      // Arrow rows become JSON objects, then take the JSON-lines path (validation, rejects, dedup, ...)
      ArrowInput.Conf conf = new ArrowInput.Conf(jsc.hadoopConfiguration());
      List<String> names = files.stream().map(f -> f.getPath().toString()).toList();
      lines = jsc.parallelize(names, Math.max(1, names.size())).flatMap(f -> ArrowInput.lines(f, conf.get()));
    }
    return lines;
  }

  public static void main(String[] argv) {
    System.exit(JobMain.run("prep", argv, USAGE, PrepJob::outputs, PrepJob::run));
  }

  /**
   * What prep writes and reads: the output, its inputs (each path as given, and every file a
   * glob or folder expands to), replay inputs and the tokenizer. Listing the inputs fails, before
   * Spark starts, when one is missing; inputs that are all empty files are refused unless
   * allow_empty: true.
   */
  public static ai.lathe.model.io.OutputGuard.Spec outputs(Config c, Configuration hconf) throws java.io.IOException {
    PrepOptions o = PrepOptions.from(c);
    List<ai.lathe.model.io.OutputGuard.Input> in = new ArrayList<>();
    long bytes = 0;
    List<String> all = new ArrayList<>(o.inputs());
    all.addAll(o.replayInputs());
    for (String path : all) {
      String label = o.inputs().contains(path) ? "input" : "replay input";
      if (!path.matches(".*[*?\\[{].*")) {
        in.add(ai.lathe.model.io.OutputGuard.Input.of(label, path));
      }
      String type = o.inputs().contains(path) ? o.inputType() : "jsonl";
      for (FileStatus f : inputFiles(path, type, hconf)) {
        in.add(ai.lathe.model.io.OutputGuard.Input.of(label, f.getPath().toString()));
        bytes += f.getLen();
      }
    }
    in.add(ai.lathe.model.io.OutputGuard.Input.of("tokenizer", o.tokenizer()));
    if (bytes == 0 && !c.bool("allow_empty", false) && !c.str("stage", "all").equals("tokenize")) {
      throw new IllegalArgumentException(String.join(", ", o.inputs()) + ": every input file is empty (0 bytes);"
          + " nothing to prepare, " + o.output() + " was not touched (allow_empty: true writes an empty dataset)");
    }
    return new ai.lathe.model.io.OutputGuard.Spec("prep", o.output(), ai.lathe.model.io.OutputGuard.Kind.PREPARED,
        c.bool("overwrite", false), in);
  }

  /** A run whose output has no rows fails before anything is replaced, unless allow_empty: true. */
  static void checkNotEmpty(Map<String, Long> rows, long inputRows, PrepOptions o, Config c) {
    if (rows.values().stream().mapToLong(Long::longValue).sum() == 0 && !c.bool("allow_empty", false)) {
      throw new IllegalArgumentException(String.join(", ", o.inputs()) + ": no rows to write (" + inputRows
          + " rows in); " + o.output() + " was not touched (allow_empty: true writes an empty dataset)");
    }
  }

  /** The stage key: all | clean (validated rows only) | tokenize (input = a clean output). */
  public static String stageOf(Config c) {
    String stage = c.str("stage", "all");
    if (!List.of("all", "clean", "tokenize").contains(stage)) {
      throw new IllegalArgumentException(c.source() + ": stage must be all, clean or tokenize, got " + stage);
    }
    return stage;
  }

  public static Result run(SparkSession spark, Config c) throws Exception {
    PrepOptions o = PrepOptions.from(c);
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    HadoopStore.check(outputs(c, conf), conf);
    if (!o.kind().equals("sft")) {
      return PreferencePrep.run(spark, c, o);
    }
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Configuration hconf = jsc.hadoopConfiguration();
    ChatTemplate template = ChatTemplate.of(o.template());
    String[] shipped = shipTokenizer(spark, o);
    String tokName = shipped[0];
    String tokSha = shipped[1];
    List<FileStatus> files = listInputs(o, hconf);

    String stage = stageOf(c);
    JavaRDD<Stage> staged;
    JavaRDD<Stage> bad1;
    JavaPairRDD<String, Stage> unique;
    long inputRows;
    long cleanRows;
    long exactUnique;
    long nearDuplicates = 0;
    long replayRows = 0;
    if (stage.equals("tokenize")) {
      // the clean stage's output is this stage's input
      String in = o.inputs().get(0);
      String mtext = HadoopIo.exists(in + "/manifest.json", hconf) ? HadoopIo.readString(in + "/manifest.json", hconf) : "";
      if (!mtext.contains("\"kind\" : \"clean\"")) {
        throw new IllegalArgumentException(in + ": not the output of the clean stage (manifest kind clean)");
      }
      staged = null;
      bad1 = jsc.emptyRDD();
      unique = CleanStore.read(spark, in).persist(StorageLevel.MEMORY_AND_DISK());
      inputRows = unique.count();
      cleanRows = inputRows;
      exactUnique = inputRows;
    } else {
      JavaRDD<Line> lines = ingest(spark, jsc, files, o.inputType());
      // validate + normalise
      staged = lines.map(l -> clean(l, o)).persist(StorageLevel.MEMORY_AND_DISK());
      inputRows = staged.count();
      bad1 = staged.filter(s -> s.reason() != null);
      // exact deduplication by content id: the earliest (file, line) wins, so reruns agree
      unique = staged.filter(s -> s.reason() == null)
          .mapToPair(s -> new Tuple2<>(s.clean().id(), s))
          .reduceByKey((a, b) -> earlier(a, b) ? a : b);
      cleanRows = staged.filter(s -> s.reason() == null).count();
      exactUnique = unique.count();
      if (o.nearDedup()) {
        JavaPairRDD<String, Object> dups = NearDedup.duplicates(unique, o.numPerm(), o.nearThreshold())
            .mapToPair(id -> new Tuple2<>(id, (Object) Boolean.TRUE));
        unique = unique.subtractByKey(dups);
        nearDuplicates = exactUnique - unique.count();
      }
      // replay: general data mixed into train, a deterministic sample of ≈ fraction × train rows
      if (!o.replayInputs().isEmpty() && o.replayFraction() > 0) {
        List<FileStatus> rf = new ArrayList<>();
        for (String in : o.replayInputs()) {
          rf.addAll(HadoopIo.listInputs(in, hconf));
        }
        files.addAll(rf);
        JavaPairRDD<String, Stage> replay = ingest(spark, jsc, rf, "jsonl").map(l -> clean(l, o))
            .filter(st -> st.reason() == null).mapToPair(st -> new Tuple2<>(st.clean().id(), st))
            .reduceByKey((x, y) -> earlier(x, y) ? x : y).subtractByKey(unique);
        long trainRows = unique.filter(t -> RowTransforms.split(t._1(), o.valFraction()).equals("train")).count();
        long available = replay.count();
        double p = available == 0 ? 0 : Math.min(1.0, o.replayFraction() * trainRows / available);
        JavaPairRDD<String, Stage> chosen = replay.filter(t ->
            ai.lathe.model.text.DataSplit.below("replay:" + t._1(), p))
            .mapValues(st -> new Stage(st.file(), st.line(), st.clean(), null, REPLAY));
        replayRows = chosen.count();
        unique = unique.union(chosen);
      }
    }
    if (stage.equals("clean")) {
      return writeClean(spark, c, o, files, tokSha, unique, bad1, inputRows, cleanRows - exactUnique, nearDuplicates,
          replayRows, staged);
    }
    // split + tokenise (timed: the tokenise stage's task time and token count are reported)
    var tokNanos = spark.sparkContext().longAccumulator("tokenise_nanos");
    var tokCount = spark.sparkContext().longAccumulator("tokens");
    JavaRDD<Object> tokenised = unique.values().mapPartitions(it -> {
      long t0 = System.nanoTime();
      var tok = ExecutorCache.tokenizer(SparkFiles.get(tokName));
      List<Object> out = new ArrayList<>();
      while (it.hasNext()) {
        Stage s = it.next();
        try {
          String split = REPLAY.equals(s.raw()) ? "train" : RowTransforms.split(s.clean().id(), o.valFraction());
          out.add(RowTransforms.tokenize(s.clean(), split, tok, template, o));
        } catch (RowTransforms.Rejected e) {
          out.add(new Stage(s.file(), s.line(), null, e.getMessage(), null));
        }
      }
      for (Object o2 : out) {
        if (o2 instanceof PreparedRow pr) {
          tokCount.add(pr.numTokens());
        }
      }
      tokNanos.add(System.nanoTime() - t0);
      return out.iterator();
    }).persist(StorageLevel.MEMORY_AND_DISK());
    JavaRDD<PreparedRow> good = tokenised.filter(x -> x instanceof PreparedRow).map(x -> (PreparedRow) x);
    long examples = 0;
    if (o.packing()) {
      examples = good.count();
      int maxLen = o.maxLength();
      good = good.mapToPair(r -> new Tuple2<>(r.lang() + "/" + r.split(), r)).groupByKey().flatMap(g -> {
        List<PreparedRow> rs = new ArrayList<>();
        g._2().forEach(rs::add);
        rs.sort((a, b) -> a.id().compareTo(b.id()));
        return Packing.pack(rs, maxLen).iterator();
      });
    }
    JavaRDD<Stage> bad = bad1.union(tokenised.filter(x -> x instanceof Stage).map(x -> (Stage) x));
    Map<String, Long> rows = new TreeMap<>(good.map(r -> r.lang() + "/" + r.split()).countByValue());
    Map<String, Long> reasons = new TreeMap<>(bad.map(s -> reasonKind(s.reason())).countByValue());
    long rejected = reasons.values().stream().mapToLong(Long::longValue).sum();
    long truncated = good.filter(PreparedRow::truncated).count();
    Result result = new Result(inputRows, rejected, cleanRows - exactUnique, nearDuplicates, replayRows, truncated,
        rows, reasons, tokCount.value(), tokNanos.value() / 1e9);
    PrepJob.checkRejects(rejected, inputRows, o, reasons);
    checkNotEmpty(rows, inputRows, o, c);
    try {
      commit(spark, o, spark.createDataFrame(good.map(Schemas::toRow), Schemas.SFT),
          bad.map(s -> RowFactory.create(s.file(), s.line(), s.reason(), s.raw())), manifest(o, c, files, tokSha, result));
    } finally {
      if (staged != null) {
        staged.unpersist();
      }
      tokenised.unpersist();
    }
    if (o.packing()) {
      System.out.printf("prep: packed %d examples into %d rows of at most %d tokens%n", examples,
          rows.values().stream().mapToLong(Long::longValue).sum(), o.maxLength());
    }
    System.out.printf("prep: %d rows in, %d rejected %s, %d duplicates, %d near-duplicates, %d replay rows, "
        + "%d truncated; wrote %s %s%n", inputRows, rejected, reasons, result.duplicates(), nearDuplicates, replayRows,
        truncated, o.output(), rows);
    return result;
  }

  /** The clean stage's output: cleaned rows (Parquet by lang/split), rejects, manifest, committed atomically. */
  static Result writeClean(SparkSession spark, Config c, PrepOptions o, List<FileStatus> files, String tokSha,
      JavaPairRDD<String, Stage> unique, JavaRDD<Stage> bad, long inputRows, long duplicates, long near, long replay,
      JavaRDD<Stage> staged) throws Exception {
    Configuration hconf = spark.sparkContext().hadoopConfiguration();
    Map<String, Long> reasons = new TreeMap<>(bad.map(s -> reasonKind(s.reason())).countByValue());
    long rejected = reasons.values().stream().mapToLong(Long::longValue).sum();
    PrepJob.checkRejects(rejected, inputRows, o, reasons);
    JavaRDD<Row> rows = unique.values().map(s -> CleanStore.toRow(s, o.valFraction()));
    Map<String, Long> counts = new TreeMap<>(rows.map(r -> r.getString(2) + "/" + r.getString(3)).countByValue());
    checkNotEmpty(counts, inputRows, o, c);
    Result result = new Result(inputRows, rejected, duplicates, near, replay, 0, counts, reasons, 0, 0);
    try {
      commit(spark, o, spark.createDataFrame(rows, CleanStore.SCHEMA),
          bad.map(s -> RowFactory.create(s.file(), s.line(), s.reason(), s.raw())),
          manifest(o, c, files, tokSha, result).replaceFirst("\"kind\" : \"sft\"", "\"kind\" : \"clean\""));
    } finally {
      staged.unpersist();
    }
    System.out.printf("prep (clean stage): %d rows in, %d rejected %s, %d duplicates; wrote %s %s%n", inputRows,
        rejected, reasons, duplicates, o.output(), counts);
    return result;
  }

  static Stage clean(Line l, PrepOptions o) {
    String text = null;
    try {
      text = RowTransforms.decodeStrict(l.raw(), l.raw().length);
      if (text.length() > o.maxChars()) {
        throw new RowTransforms.Rejected("row longer than max_chars (" + text.length() + " > " + o.maxChars() + ")");
      }
      return new Stage(l.file(), l.line(), RowTransforms.clean(RowTransforms.parse(text), o), null, null);
    } catch (RowTransforms.Rejected e) {
      String raw = text == null ? new String(l.raw(), java.nio.charset.StandardCharsets.UTF_8) : text;
      return new Stage(l.file(), l.line(), null, e.getMessage(), raw.length() > 2000 ? raw.substring(0, 2000) : raw);
    } catch (RuntimeException e) {
      return new Stage(l.file(), l.line(), null, "unreadable row: " + e, null);
    }
  }

  static boolean earlier(Stage a, Stage b) {
    int c = a.file().compareTo(b.file());
    return c < 0 || c == 0 && a.line() <= b.line();
  }

  /** The reason without its row-specific details, for counting. */
  static String reasonKind(String reason) {
    String r = reason.replaceAll("\\(.*\\)", "").replaceAll("\\[\\d+\\]", "[]");
    int colon = r.indexOf(": ");
    return (colon > 0 ? r.substring(0, colon) : r).strip();
  }

  static String manifest(PrepOptions o, Config c, List<FileStatus> files, String tokSha, Result r) throws Exception {
    ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode m = om.createObjectNode();
    m.put("schema_version", switch (o.kind()) {
      case "preference" -> Schemas.PREFERENCE_SCHEMA_VERSION;
      case "kto" -> Schemas.KTO_SCHEMA_VERSION;
      default -> Schemas.SFT_SCHEMA_VERSION;
    });
    m.put("kind", o.kind());
    if (o.kind().equals("preference")) {
      m.put("constructed_pairs", !o.format().equals("preference"));
    }
    m.put("code_version", Version.get());
    ArrayNode in = m.putArray("inputs");
    StringBuilder fp = new StringBuilder();
    for (FileStatus f : files) {
      in.addObject().put("path", f.getPath().toString()).put("bytes", f.getLen()).put("modified", f.getModificationTime());
      fp.append(f.getPath()).append('|').append(f.getLen()).append('|').append(f.getModificationTime()).append('\n');
    }
    m.put("input_fingerprint", sha256(fp.toString()));
    m.put("tokenizer_sha256", tokSha);
    m.put("template", o.template());
    m.put("format", o.format());
    m.put("max_length", o.maxLength());
    m.put("over_length", o.overLength());
    m.put("val_fraction", o.valFraction());
    ObjectNode counts = m.putObject("counts");
    counts.put("input_rows", r.inputRows());
    counts.put("rejected", r.rejected());
    counts.put("duplicates", r.duplicates());
    counts.put("near_duplicates", r.nearDuplicates());
    counts.put("replay_rows", r.replayRows());
    counts.put("truncated", r.truncated());
    ObjectNode reasons = counts.putObject("rejects_by_reason");
    r.rejectReasons().forEach(reasons::put);
    ObjectNode rows = counts.putObject("rows");
    r.rows().forEach(rows::put);
    counts.put("output_rows", r.rows().values().stream().mapToLong(Long::longValue).sum());
    m.set("config", c.root());
    return om.writeValueAsString(m);
  }

  static String sha256(String s) {
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
          .digest(s.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
