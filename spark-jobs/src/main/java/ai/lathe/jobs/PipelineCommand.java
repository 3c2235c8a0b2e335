package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import ai.lathe.model.cli.InitModelCommand;
import ai.lathe.prep.PrepJob;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * {@code lathe pipeline}: the main job on the bundled sample data, on embedded Spark. Creates the
 * demo base model (random weights, the bundled Llama-2 tokenizer) when missing, prepares the
 * data (prep) and trains the SFT adapter by parameter averaging (sft).
 */
public final class PipelineCommand {
  public static final String USAGE = """
      usage: lathe pipeline [--config conf/pipeline.yaml] [--set key=value ...]
        Runs the whole pipeline on the bundled sample data on embedded Spark: demo base model,
        prep (validated, tokenised Parquet), distributed SFT adapter. Outputs go under work_dir.""";

  private PipelineCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("pipeline", argv, Set.of()).allow(Set.of("config", "set"));
    Config c = Config.load(a.has("config") ? a.path("config") : Path.of("conf/pipeline.yaml"), a.all("set"));
    Path work = Path.of(c.str("work_dir", "work"));
    Path model = Path.of(c.str("model.path", work.resolve("model").toString()));
    if (!Files.exists(model.resolve("config.json"))) {
      List<String> init = new ArrayList<>(List.of("--output", model.toString(),
          "--tokenizer", c.str("model.tokenizer", "data/tokenizer/llama2/tokenizer.json"),
          "--dim", c.str("model.dim", "256"), "--layers", c.str("model.layers", "4"),
          "--heads", c.str("model.heads", "8"), "--kv-heads", c.str("model.kv_heads", "4"),
          "--ffn", c.str("model.ffn", "688"), "--seed", c.str("model.seed", "0")));
      System.out.println("== pipeline: demo base model");
      InitModelCommand.run(init.toArray(new String[0]));
    }
    Path prepared = work.resolve("prepared/sft");
    Path adapter = work.resolve("adapters/sft");
    Config prep = stage(c, "prep", "conf/prep.yaml", List.of("tokenizer=" + model, "output=" + prepared));
    Config sft = stage(c, "sft", "conf/sft.yaml", List.of("model=" + model, "data=" + prepared, "output=" + adapter));
    SparkSession spark = SparkSession.builder().appName("lathe-pipeline").getOrCreate();
    try {
      System.out.println("== pipeline: prep");
      PrepJob.run(spark, prep);
      System.out.println("== pipeline: sft (parameter averaging on " + spark.sparkContext().master() + ")");
      SftTrainJob.Result r = SftTrainJob.run(spark, sft);
      var first = r.metrics().get(0);
      var last = r.metrics().get(r.metrics().size() - 1);
      System.out.println("== pipeline: done");
      System.out.printf("base model:    %s%nprepared data: %s%nSFT adapter:   %s (train loss %.4f -> %.4f, "
          + "validation loss %.4f)%n", model, prepared, adapter, first.get("train_loss").asDouble(),
          last.get("train_loss").asDouble(), last.path("val_loss").asDouble());
    } finally {
      spark.stop();
    }
    return 0;
  }

  /** A stage's config file with the pipeline's paths and its own overrides (pipeline keys stage.set.*). */
  private static Config stage(Config c, String name, String dflt, List<String> paths) throws Exception {
    Config s = Config.load(Path.of(c.str(name + ".config", dflt)), paths);
    if (c.node(name + ".set") != null) {
      for (var it = c.node(name + ".set").fields(); it.hasNext(); ) {
        var e = it.next();
        s.set(e.getKey() + "=" + e.getValue().asText());
      }
    }
    return s;
  }
}
