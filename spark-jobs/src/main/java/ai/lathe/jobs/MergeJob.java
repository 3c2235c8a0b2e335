package ai.lathe.jobs;

import ai.lathe.merge.AdapterMerger;
import ai.lathe.merge.MergeConfig;
import ai.lathe.model.Config;
import ai.lathe.model.nn.QuantMode;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.io.AtomicDir;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.prep.JobMain;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The nightly merge: merges per-language adapters (see conf/merge.yaml) into a staging folder,
 * optionally gates it on each language's validation loss through the merged adapter, and
 * publishes it with one rename only when the gate passes. A failed gate exits with code 3 and
 * leaves the last published merge in place.
 * {@code spark-submit --class ai.lathe.jobs.MergeJob lathe-jobs.jar --config merge.yaml}.
 */
public final class MergeJob {
  public static final String USAGE = """
      usage: lathe merge-job --config conf/merge.yaml [--set key=value ...]
        Merges adapters like `lathe merge`, then (with gate.max_val_loss and gate.data) checks the
        validation loss of each language's prepared data through the merged adapter and publishes
        only when every language is within the bound; otherwise exits 3 and keeps the last merge.""";

  /** Exit code of a merge the gate refused. */
  public static final int GATE_FAILED = 3;

  private MergeJob() {}

  public static void main(String[] argv) {
    System.exit(JobMain.run("merge-job", argv, USAGE, (c, h) -> JobOutputs.mergeJob(c), MergeJob::run));
  }

  /** Thrown when the gate refuses a merge; JobMain maps it to exit code 3. */
  public static final class GateFailed extends JobMain.ExitCode {
    GateFailed(String msg) {
      super(GATE_FAILED, msg);
    }
  }

  /** The job's keys (ConfigReference.MERGE_JOB): the merge, parallel_modules and the gate (null: none). */
  public record Settings(MergeConfig merge, boolean parallelModules, Gate gate) {
    public static Settings from(Config c) {
      return new Settings(MergeConfig.from(c), c.bool("parallel_modules", true), Gate.from(c));
    }
  }

  /** The gate.* keys; null when the config has no gate. */
  public record Gate(String data, double maxValLoss, int seqLen, List<String> langs) {
    public static Gate from(Config c) {
      if (c.node("gate") == null) {
        return null;
      }
      return new Gate(c.need("gate.data"), c.number("gate.max_val_loss", Double.POSITIVE_INFINITY),
          c.integer("gate.seq_len", 512), c.strings("gate.langs", List.of()));
    }
  }

  public static Map<String, Double> run(SparkSession spark, Config c) throws Exception {
    Settings settings = Settings.from(c);
    MergeConfig mc = settings.merge();
    Gate gateSettings = settings.gate();
    ai.lathe.prep.HadoopStore.check(JobOutputs.mergeJob(c), spark.sparkContext().hadoopConfiguration());
    Path out = Path.of(mc.outputPath()).toAbsolutePath();
    Path staging = out.resolveSibling("." + out.getFileName() + ".staging-" + ai.lathe.model.io.AtomicCommit.tag());
    Config staged = Config.load(null, List.of());
    staged.root().setAll(c.root().deepCopy());
    staged.set("output.path=" + staging);
    MergeConfig smc = MergeConfig.from(staged);
    AdapterMerger.Result r;
    if (mc.outputKind().equals("adapter") && settings.parallelModules()) {
      // spread modules over the executors (each task opens the adapters itself; paths must be
      // visible to executors, as on a shared file system), then write the adapter on the driver
      LlamaConfig model = LlamaConfig.read(Path.of(mc.baseModel()).resolve("config.json"));
      List<int[]> modules = AdapterMerger.allModules(model);
      JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
      List<AdapterMerger.ModuleFactors> factors = jsc.parallelize(modules, Math.min(modules.size(),
          Math.max(1, jsc.defaultParallelism() * 2))).mapPartitions(it -> {
            List<int[]> mine = new java.util.ArrayList<>();
            it.forEachRemaining(mine::add);
            return AdapterMerger.factorModules(smc, model, mine).iterator();
          }).collect();
      r = AdapterMerger.writeAdapter(smc, model, factors);
    } else {
      r = AdapterMerger.run(smc, Path.of(mc.baseModel()));
    }
    Map<String, Double> losses = new LinkedHashMap<>();
    try {
      if (gateSettings != null && mc.outputKind().equals("adapter")) {
        double bound = gateSettings.maxValLoss();
        // scored on the base the adapters were trained on (NF4 with quantize)
        LlamaWeights w = HfCheckpoint.load(Path.of(mc.baseModel()), DataType.FLOAT,
            QuantMode.of(mc.baseQuantize()).base(), QuantMode.of(mc.baseQuantize()).doubleQuant());
        AdapterSet merged = PeftAdapter.read(staging, w.config, DataType.FLOAT);
        LlamaModel model = new LlamaModel(w, merged, DataType.FLOAT);
        String data = gateSettings.data();
        int seqLen = gateSettings.seqLen();
        List<String> langs = gateSettings.langs();
        List<String> present = spark.read().parquet(data + "/data").select("lang").distinct().collectAsList()
            .stream().map(x -> x.getString(0)).sorted().toList();
        for (String lang : langs.isEmpty() ? present : langs) {
          List<Tokens> rows = PreparedData.examples(spark, data, "validation", List.of(lang))
              .map(PreparedData::tokens).collect();
          if (rows.isEmpty()) {
            throw new IllegalArgumentException(data + ": no validation rows for language '" + lang + "'");
          }
          losses.put(lang, SftTrainer.validationLoss(model, rows, 4, seqLen));
        }
        ObjectNode g = ((ObjectNode) r.manifest()).putObject("gate");
        g.put("max_val_loss", bound);
        losses.forEach(g::put);
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(staging.resolve("lathe-merge.json").toFile(),
            r.manifest());
        System.out.printf("merge-job: validation loss per language %s (bound %.4f)%n", losses, bound);
        for (var e : losses.entrySet()) {
          if (e.getValue() > bound) {
            throw new GateFailed("gate refused the merge: validation loss " + String.format("%.4f", e.getValue())
                + " for '" + e.getKey() + "' exceeds " + bound + "; the last published merge in " + out + " is kept");
          }
        }
      }
      publish(staging, out);
      staging = null;
      System.out.printf("merge-job: published %s (%s of %d adapters)%n", out, mc.method().id, mc.adapters().size());
      return losses;
    } finally {
      if (staging != null) {
        AtomicDir.deleteTree(staging);
      }
    }
  }

  static void publish(Path staging, Path out) throws java.io.IOException {
    AtomicDir.commit(staging, out);
  }
}
