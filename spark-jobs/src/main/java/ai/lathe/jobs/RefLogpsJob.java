package ai.lathe.jobs;

import ai.lathe.model.Batch;
import ai.lathe.model.Config;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.prep.HadoopIo;
import ai.lathe.prep.JobMain;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Reference log-probs computed once: adds ref_chosen_logp and ref_rejected_logp (KTO: ref_logp),
 * the sums of log p over the completion tokens under the frozen base (adapters disabled) or a
 * named reference adapter, to prepared preference data, as a new folder committed atomically
 * (output may be the input folder itself: the rerun replaces it, existing columns are recomputed).
 * {@code spark-submit --class ai.lathe.jobs.RefLogpsJob lathe-jobs.jar --config ref-logps.yaml}.
 */
public final class RefLogpsJob {
  public static final String USAGE = """
      usage: lathe ref-logps --config conf/ref-logps.yaml [--set key=value ...]
        (keys: model, data, output, reference.adapter, batch_size)
        Adds reference log-prob columns to prepared preference (or KTO) Parquet.""";

  private RefLogpsJob() {}

  public static void main(String[] argv) {
    System.exit(JobMain.run("ref-logps", argv, USAGE, (c, h) -> JobOutputs.refLogps(c), RefLogpsJob::run));
  }

  /**
   * Per-thread scoring engines, keyed by model and adapter; the four most recent stay (eval holds
   * three at once: candidate, baseline and judge).
   */
  private static final ThreadLocal<java.util.Map<String, LlamaModel>> ENGINES =
      ThreadCache.perThread(4, LlamaModel::releaseWorkspaces);

  static LlamaModel engine(String model, String quant, String adapter) {
    // keyed by the adapter's content too: a long-lived JVM must not reuse a rewritten adapter
    String key = model + "|" + quant + "|" + adapter + "|" + (adapter == null ? "" : adapterSha(adapter));
    return ENGINES.get().computeIfAbsent(key, k -> {
      LlamaWeights w = ExecutorModels.get(model, quant);
      try {
        AdapterSet a = adapter == null ? null : PeftAdapter.read(Path.of(adapter), w.config, DataType.FLOAT);
        return new LlamaModel(w, a, DataType.FLOAT);
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  /** The job's keys (ConfigReference.REF_LOGPS; the old reference_adapter is renamed by validate). */
  public record Settings(String model, String data, String output, String adapter, String quant, int batch) {
    public static Settings from(Config c) {
      return new Settings(ExecutorModels.forExecutors(c.need("model")), c.need("data"), c.need("output"),
          ExecutorModels.forExecutors(c.str("reference.adapter", null)),
          ExecutorModels.quantOf(c), c.integer("batch_size", 8));
    }
  }

  public static long run(SparkSession spark, Config c) throws Exception {
    Settings st = Settings.from(c);
    String model = st.model();
    String data = st.data();
    String output = st.output();
    String adapter = st.adapter();
    String quant = st.quant();
    int batch = st.batch();
    Configuration hconf = spark.sparkContext().hadoopConfiguration();
    ai.lathe.prep.HadoopStore.check(JobOutputs.refLogps(c), hconf);
    if (!HadoopIo.exists(data + "/manifest.json", hconf)) {
      throw new IllegalArgumentException(data + ": prepared data not found (manifest.json missing)");
    }
    ObjectNode manifest = (ObjectNode) new ObjectMapper().readTree(HadoopIo.readString(data + "/manifest.json", hconf));
    String kind = manifest.path("kind").asText();
    if (!kind.equals("preference") && !kind.equals("kto")) {
      throw new IllegalArgumentException(data + ": kind '" + kind + "' has no completions to score (preference or kto)");
    }
    String sha = PreparedData.sha256(model + "/tokenizer.json", hconf);
    if (!sha.equals(manifest.path("tokenizer_sha256").asText())) {
      throw new IllegalArgumentException(data + " was tokenised with a different tokenizer than " + model);
    }
    if (adapter != null) {
      PeftAdapter.read(Path.of(adapter), PreparedData.modelConfig(model, hconf), DataType.FLOAT); // fails early
    }
    boolean pairs = kind.equals("preference");
    Dataset<Row> in = spark.read().parquet(data + "/data");
    for (String col : pairs ? List.of("ref_chosen_logp", "ref_rejected_logp") : List.of("ref_logp")) {
      if (List.of(in.columns()).contains(col)) {
        // a rerun (e.g. in place, output = data, or with another reference) replaces the columns
        System.out.printf("ref-logps: %s already has %s; recomputing it%n", data, col);
        in = in.drop(col);
      }
    }
    // a pair's chosen and rejected run in one batch; rows hold up to the data's max_length tokens
    ai.lathe.model.LlamaConfig mc = PreparedData.modelConfig(model, hconf);
    ai.lathe.model.train.MemoryEstimate mem = ai.lathe.model.train.MemoryEstimate.of(mc,
        PreparedData.weightBytes(model, hconf), ai.lathe.model.nn.QuantMode.of(quant), batch * (pairs ? 2 : 1),
        manifest.path("max_length").asInt(1024), false);
    System.out.println("ref-logps: " + JobMemory.advice(mc, mem, quant));
    Dataset<Row> scoredDf = withReference(spark, in, pairs, model, quant, adapter, batch);
    String tmp = HadoopIo.tempSibling(output);
    long n;
    try {
      scoredDf.write().mode(SaveMode.ErrorIfExists).partitionBy("lang", "split").parquet(tmp + "/data");
      n = spark.read().parquet(tmp + "/data").count();
      ObjectNode ref = manifest.putObject("reference");
      ref.put("model", model);
      ref.put("adapter", adapter);
      ref.put("adapter_sha256", adapter == null ? null : adapterSha(adapter));
      ref.put("quantize", quant);
      ref.put("rows", n);
      HadoopIo.writeString(tmp + "/manifest.json", new ObjectMapper().writerWithDefaultPrettyPrinter()
          .writeValueAsString(manifest), hconf);
      HadoopIo.writeString(tmp + "/_SUCCESS", "", hconf);
      HadoopIo.commit(tmp, output, hconf);
    } catch (Exception e) {
      HadoopIo.deleteQuietly(tmp, hconf);
      throw e;
    }
    System.out.printf("ref-logps: %d %s rows scored under %s%s%s -> %s%n", n, kind, model,
        quant.equals("none") ? "" : " (" + quant + ")",
        adapter == null ? " (adapters disabled)" : " + " + adapter, output);
    return n;
  }

  /** The rows with the reference columns added (completion log-prob sums under model [+ adapter]). */
  static Dataset<Row> withReference(SparkSession spark, Dataset<Row> in, boolean pairs, String model, String quant,
      String adapter, int batch) {
    StructType schema = pairs ? in.schema().add("ref_chosen_logp", DataTypes.DoubleType, false)
        .add("ref_rejected_logp", DataTypes.DoubleType, false) : in.schema().add("ref_logp", DataTypes.DoubleType, false);
    JavaRDD<Row> scored = in.javaRDD().mapPartitions(it -> {
      List<Row> rows = new ArrayList<>();
      it.forEachRemaining(rows::add);
      LlamaModel m = engine(model, quant, adapter);
      m.setAdaptersEnabled(adapter != null);
      List<Row> out = new ArrayList<>();
      for (int s = 0; s < rows.size(); s += batch) {
        List<Row> part = rows.subList(s, Math.min(rows.size(), s + batch));
        List<int[]> ids = new ArrayList<>();
        List<Integer> starts = new ArrayList<>();
        for (Row r : part) {
          if (pairs) {
            ids.add(ints(r.getList(r.fieldIndex("chosen_ids"))));
            starts.add(r.getInt(r.fieldIndex("chosen_start")));
            ids.add(ints(r.getList(r.fieldIndex("rejected_ids"))));
            starts.add(r.getInt(r.fieldIndex("rejected_start")));
          } else {
            ids.add(ints(r.getList(r.fieldIndex("input_ids"))));
            starts.add(r.getInt(r.fieldIndex("completion_start")));
          }
        }
        int max = 1;
        for (int[] x : ids) {
          max = Math.max(max, x.length);
        }
        int seq = Math.max(max, Math.min(((max + 15) / 16) * 16, m.config().maxPositionEmbeddings()));
        double[] lp = m.sequenceLogProbs(Batch.of(ids, starts.stream().mapToInt(Integer::intValue).toArray(), seq, 0));
        for (int k = 0; k < part.size(); k++) {
          Row r = part.get(k);
          Object[] v = new Object[r.size() + (pairs ? 2 : 1)];
          for (int f = 0; f < r.size(); f++) {
            v[f] = r.get(f);
          }
          if (pairs) {
            v[r.size()] = lp[2 * k];
            v[r.size() + 1] = lp[2 * k + 1];
          } else {
            v[r.size()] = lp[k];
          }
          out.add(RowFactory.create(v));
        }
      }
      return out.iterator();
    });
    return spark.createDataFrame(scored, schema);
  }

  /** sha256 of an adapter folder's weights (identity of a reference or starting adapter). */
  static String adapterSha(String dir) {
    try (java.io.InputStream in = java.nio.file.Files.newInputStream(Path.of(dir).resolve(PeftAdapter.WEIGHTS))) {
      return ai.lathe.model.io.Hashing.sha256(in);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static int[] ints(List<Integer> l) {
    int[] a = new int[l.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = l.get(i);
    }
    return a;
  }
}
