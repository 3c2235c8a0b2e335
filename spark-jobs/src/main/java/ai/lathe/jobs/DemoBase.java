package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.cli.InitModelCommand;
import ai.lathe.model.cli.SftCommand;
import ai.lathe.model.io.LocalStore;
import ai.lathe.model.io.OutputGuard;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The pipeline's first stage: a demo base model that has learned something. No pretrained
 * weights can be shipped, so the demo model is created with random weights (init-model, in
 * work/model-init) and trained from scratch on the bundled text, every weight trainable
 * (sft-local with train.mode full, conf/base.yaml), into work/model; later stages then start
 * from a model whose loss has visibly fallen from the uniform ln(vocab).
 */
final class DemoBase {
  private DemoBase() {}

  /** Creates the random init (when missing) and trains it into base's output. */
  static void create(List<String> initArgs, Config base) throws Exception {
    Path init = Path.of(base.need("model"));
    if (!Files.exists(init.resolve("config.json"))) {
      System.out.println("== pipeline: demo base model (random weights)");
      InitModelCommand.run(initArgs.toArray(new String[0]));
    }
    System.out.println("== pipeline: demo base training from scratch (sft-local, train.mode full, " + base.need("data")
        + ")");
    SftCommand.Settings s = SftCommand.Settings.from(base);
    if (!s.mode().full()) {
      throw new IllegalArgumentException(base.source() + ": the demo base stage trains with train.mode full");
    }
    try (var lease = OutputGuard.acquire(LocalStore.INSTANCE, new OutputGuard.Spec("pipeline base",
        s.output().toString(), OutputGuard.Kind.TRAINED_MODEL, base.bool("overwrite", false),
        List.of(OutputGuard.Input.of("model", s.model().toString()), OutputGuard.Input.of("data", s.data().toString()))))) {
      // before Spark starts this JVM is one trainer: all cores to BLAS (bin/lathe sets one thread per
      // task for the Spark stages that follow, and they get it back)
      var blas = org.nd4j.linalg.factory.Nd4j.factory().blas();
      int before = blas.getMaxThreads();
      blas.setMaxThreads(Runtime.getRuntime().availableProcessors());
      try {
        SftCommand.run(base);
      } finally {
        blas.setMaxThreads(before);
      }
    }
  }

  /** One line for the pipeline's summary: the base's validation loss before and after its training. */
  static String summary(Path model) throws Exception {
    Path run = model.resolve("lathe-run.json");
    if (!Files.exists(run)) {
      return "base training:  none (" + model + " was given, not trained here)";
    }
    JsonNode r = new ObjectMapper().readTree(run.toFile());
    JsonNode m = r.path("metrics");
    int vocab = new ObjectMapper().readTree(model.resolve("config.json").toFile()).path("vocab_size").asInt();
    return String.format("base training:  %s, %d steps from scratch (full-parameter, %,d weights): validation loss "
        + "%.4f -> %.4f (uniform over %d tokens: %.4f)", r.path("job").asText(), m.path("steps").asInt(),
        m.path("trainable_parameters").asLong(), m.path("initial_val_loss").asDouble(Double.NaN),
        m.path("final_val_loss").asDouble(Double.NaN), vocab, Math.log(vocab));
  }
}
