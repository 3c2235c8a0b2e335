package ai.lathe.jobs;

import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.KtoTrainer;
import ai.lathe.prep.HadoopIo;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import scala.Tuple2;

/** Prepared preference / KTO rows for the preference jobs: reference columns and row checks. */
final class PrefData {
  private PrefData() {}

  static List<String> refColumns(boolean kto) {
    return kto ? List.of("ref_logp") : List.of("ref_chosen_logp", "ref_rejected_logp");
  }

  /**
   * The rows of the configured languages, checked, with reference log-probs: from the data (which
   * must say it was scored with this job's reference) or, with reference.on_the_fly, computed now.
   */
  static Dataset<Row> load(SparkSession spark, PrefSettings s, JsonNode manifest, Configuration hconf)
      throws java.io.IOException {
    boolean kto = s.kind().equals("kto");
    Dataset<Row> df = spark.read().parquet(s.data() + "/data");
    if (!s.langs().isEmpty()) {
      df = df.where(functions.col("lang").isin(s.langs().toArray()));
    }
    List<String> have = new ArrayList<>();
    for (String col : refColumns(kto)) {
      if (List.of(df.columns()).contains(col)) {
        have.add(col);
      }
    }
    if (!have.isEmpty() && have.size() < refColumns(kto).size()) {
      throw new IllegalArgumentException(s.data() + ": has " + have + " but not all of " + refColumns(kto));
    }
    checkRows(df, s, !have.isEmpty());
    if (have.isEmpty()) {
      if (!s.referenceOnTheFly()) {
        throw new IllegalArgumentException(s.data() + ": rows have no " + refColumns(kto) + " columns (reference "
            + "log-probs); run `lathe ref-logps` on it first, or set reference.on_the_fly: true to compute them now");
      }
      System.out.printf("%s: computing reference log-probs on the fly (%s)%n", s.kind(),
          s.referenceAdapter() == null ? "base, adapters disabled" : s.referenceAdapter());
      // scored once: both splits are read from it
      return RefLogpsJob.withReference(spark, df, !kto, s.model(), s.quant(), s.referenceAdapter(), s.referenceBatch())
          .persist(org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK());
    }
    JsonNode ref = manifest.path("reference");
    String model = ref.path("model").asText(null);
    String adapter = ref.path("adapter").isTextual() ? ref.get("adapter").asText() : null;
    String quant = ref.path("quantize").asText("none");
    if (!quant.equals(s.quant())) {
      throw new IllegalArgumentException(s.data() + ": reference log-probs were computed on a base held as '" + quant
          + "', but this job's base is '" + s.quant() + "' (quantize/double_quant); rerun lathe ref-logps with the same"
          + " settings");
    }
    String sha = ref.path("adapter_sha256").asText(null);
    if (adapter != null && sha != null && samePath(adapter, s.referenceAdapter(), hconf)
        && !sha.equals(RefLogpsJob.adapterSha(adapter))) {
      throw new IllegalArgumentException(s.data() + ": reference log-probs were computed with " + adapter
          + " (adapter_model.safetensors sha256 " + sha.substring(0, 12) + "…), which has changed since; rerun "
          + "lathe ref-logps");
    }
    if (!samePath(model, s.model(), hconf) || !samePath(adapter, s.referenceAdapter(), hconf)) {
      throw new IllegalArgumentException(s.data() + ": reference log-probs were computed with model " + model
          + (adapter == null ? " (adapters disabled)" : " + adapter " + adapter) + ", but this job's reference is "
          + s.model() + (s.referenceAdapter() == null ? " (adapters disabled)" : " + adapter " + s.referenceAdapter())
          + "; rerun lathe ref-logps, or point the job at matching data");
    }
    return df;
  }

  static boolean samePath(String a, String b, Configuration hconf) throws java.io.IOException {
    if (a == null || b == null) {
      return Objects.equals(a, b);
    }
    return HadoopIo.fs(a, hconf).makeQualified(new org.apache.hadoop.fs.Path(a))
        .equals(HadoopIo.fs(b, hconf).makeQualified(new org.apache.hadoop.fs.Path(b)));
  }

  /** Fails on the first bad rows, naming file, row id and field; nothing is trained or written. */
  static void checkRows(Dataset<Row> df, PrefSettings s, boolean withRef) {
    boolean kto = s.kind().equals("kto");
    int seqLen = s.train().seqLen();
    List<String> refs = withRef ? refColumns(kto) : List.of();
    JavaRDD<String> bad = df.withColumn("_file", functions.input_file_name()).javaRDD().map(r -> {
      String where = r.getString(r.fieldIndex("_file")) + ": row id=" + r.getString(r.fieldIndex("id")) + ": ";
      for (String col : refs) {
        int i = r.fieldIndex(col);
        if (r.isNullAt(i) || !Double.isFinite(r.getDouble(i))) {
          return where + "field " + col + " is " + (r.isNullAt(i) ? "null" : r.getDouble(i));
        }
      }
      if (kto) {
        int n = r.getList(r.fieldIndex("input_ids")).size();
        return n > seqLen ? where + "input_ids has " + n + " tokens, more than train.seq_len " + seqLen : null;
      }
      DpoTrainer.Pair p = pair(r);
      if (!p.sharesPrompt()) {
        return where + "chosen_ids and rejected_ids do not share a prompt (chosen_start " + p.chosenStart()
            + ", rejected_start " + p.rejectedStart() + "); the preference format needs one prompt per pair";
      }
      int n = Math.max(p.chosen().length, p.rejected().length);
      return n > seqLen ? where + "chosen_ids/rejected_ids have " + n + " tokens, more than train.seq_len " + seqLen
          : null;
    }).filter(Objects::nonNull);
    List<String> first = bad.take(3);
    if (!first.isEmpty()) {
      long n = bad.count();
      throw new IllegalArgumentException(String.join("; ", first) + (n > first.size() ? " (" + n + " bad rows in all)"
          : ""));
    }
  }

  static DpoTrainer.Pair pair(Row r) {
    boolean ref = List.of(r.schema().fieldNames()).contains("ref_chosen_logp");
    return new DpoTrainer.Pair(RefLogpsJob.ints(r.getList(r.fieldIndex("chosen_ids"))),
        r.getInt(r.fieldIndex("chosen_start")), RefLogpsJob.ints(r.getList(r.fieldIndex("rejected_ids"))),
        r.getInt(r.fieldIndex("rejected_start")), ref ? r.getDouble(r.fieldIndex("ref_chosen_logp")) : Double.NaN,
        ref ? r.getDouble(r.fieldIndex("ref_rejected_logp")) : Double.NaN);
  }

  static KtoTrainer.Example example(Row r) {
    return new KtoTrainer.Example(RefLogpsJob.ints(r.getList(r.fieldIndex("input_ids"))),
        r.getInt(r.fieldIndex("completion_start")), r.getBoolean(r.fieldIndex("label")),
        r.getDouble(r.fieldIndex("ref_logp")));
  }

  /** A KTO row keyed "hash of its prompt tokens|id": PrefixPartitioner places it by the prompt. */
  static Tuple2<String, Object> byPrompt(Tuple2<String, Object> e) {
    KtoTrainer.Example x = (KtoTrainer.Example) e._2();
    return new Tuple2<>(String.format("%08x", x.prompt().hashCode()) + "|" + e._1(), x);
  }

  /** Partitions "prefix|rest" keys by the prefix alone. */
  static final class PrefixPartitioner extends org.apache.spark.Partitioner {
    private final int n;

    PrefixPartitioner(int n) {
      this.n = n;
    }

    @Override
    public int numPartitions() {
      return n;
    }

    @Override
    public int getPartition(Object key) {
      String k = (String) key;
      return Math.floorMod(k.substring(0, k.indexOf('|')).hashCode(), n);
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof PrefixPartitioner p && p.n == n;
    }

    @Override
    public int hashCode() {
      return n;
    }
  }

  /** (id, Pair or Example) of one split. */
  static JavaRDD<Tuple2<String, Object>> examples(Dataset<Row> df, String split, boolean kto) {
    Dataset<Row> d = df.where(functions.col("split").equalTo(split));
    if (kto) {
      return ColumnarRows.map(d, List.of("id", "input_ids", "completion_start", "label", "ref_logp"),
          (r, c) -> new Tuple2<>(r.getUTF8String(c[0]).toString(), new KtoTrainer.Example(r.getArray(c[1])
              .toIntArray(), r.getInt(c[2]), r.getBoolean(c[3]), r.getDouble(c[4]))));
    }
    boolean ref = List.of(d.columns()).contains("ref_chosen_logp");
    List<String> cols = new ArrayList<>(List.of("id", "chosen_ids", "chosen_start", "rejected_ids", "rejected_start"));
    cols.addAll(ref ? refColumns(false) : List.of());
    // arrays copied in bulk out of the columnar batches (or internal rows), no Row per row
    return ColumnarRows.map(d, cols, (r, c) -> new Tuple2<>(r.getUTF8String(c[0]).toString(), new DpoTrainer.Pair(
        r.getArray(c[1]).toIntArray(), r.getInt(c[2]), r.getArray(c[3]).toIntArray(), r.getInt(c[4]),
        ref ? r.getDouble(c[5]) : Double.NaN, ref ? r.getDouble(c[6]) : Double.NaN)));
  }
}
