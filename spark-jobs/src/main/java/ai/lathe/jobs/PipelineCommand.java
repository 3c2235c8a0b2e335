package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import ai.lathe.model.cli.InitModelCommand;
import ai.lathe.model.cli.SftCommand;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * {@code lathe pipeline}: the main job on the bundled sample data. Creates the demo base model
 * (random weights, the bundled Llama-2 tokenizer) when missing, trains the SFT adapter and scores
 * held-out rows with and without it.
 */
public final class PipelineCommand {
  public static final String USAGE = """
      usage: lathe pipeline [--config conf/pipeline.yaml] [--set key=value ...]
        Runs the whole pipeline on the bundled sample data: demo base model, SFT adapter,
        scoring. Outputs go under work_dir (default work/).""";

  private PipelineCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("pipeline", argv, Set.of()).allow(Set.of("config", "set"));
    Config c = Config.load(a.has("config") ? a.path("config") : null, a.all("set"));
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
    System.out.println("== pipeline: SFT");
    Config sft = Config.load(Path.of(c.str("sft.config", "conf/sft-local.yaml")), List.of());
    sft.set("model=" + model);
    sft.set("output=" + work.resolve("adapters/sft"));
    if (c.node("sft.set") != null) {
      for (var it = c.node("sft.set").fields(); it.hasNext(); ) {
        var e = it.next();
        sft.set(e.getKey() + "=" + e.getValue().asText());
      }
    }
    var run = SftCommand.run(sft);
    System.out.println("== pipeline: done");
    System.out.printf("base model:  %s%nSFT adapter: %s (validation loss %.4f -> %.4f)%n", model,
        work.resolve("adapters/sft"), run.path("metrics").path("initial_val_loss").asDouble(),
        run.path("metrics").path("final_val_loss").asDouble());
    return 0;
  }
}
