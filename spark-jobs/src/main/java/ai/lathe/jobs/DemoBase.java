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

  /**
   * Creates the random init (when missing) and trains it into base's output on the rows that
   * prep puts in its train split; prep's validation rows give the base's before/after loss and
   * stay unseen by its training.
   */
  static void create(List<String> initArgs, Config base, Config prep) throws Exception {
    Path init = Path.of(base.need("model"));
    if (!Files.exists(init.resolve("config.json"))) {
      System.out.println("== pipeline: demo base model (random weights)");
      InitModelCommand.run(initArgs.toArray(new String[0]));
    }
    System.out.println("== pipeline: demo base training from scratch (sft-local, train.mode full, " + base.need("data")
        + ")");
    // sft-local splits by the same content hash as prep (text/DataSplit): with prep's val_fraction
    // its validation rows are prep's, unseen by the base and held out for its before/after loss
    double valFraction = prep.number("val_fraction", 0.1);
    base.set("val_fraction=" + valFraction, "the pipeline (prep's val_fraction)");
    SftCommand.Settings s = SftCommand.Settings.from(base);
    if (!s.mode().full()) {
      throw new IllegalArgumentException(base.source() + ": the demo base stage trains with train.mode full");
    }
    try (var lease = OutputGuard.acquire(LocalStore.INSTANCE, new OutputGuard.Spec("pipeline base",
        s.output().toString(), OutputGuard.Kind.TRAINED_MODEL, base.bool("overwrite", false),
        List.of(OutputGuard.Input.of("model", s.model().toString()), OutputGuard.Input.of("data", s.data().toString()))))) {
      // before Spark starts this JVM is one trainer: all cores to BLAS and to the row loops (sft-local
      // sets Par's JVM-wide threads); the Spark stages that follow get both back (one task per core,
      // one thread per task)
      var blas = org.nd4j.linalg.factory.Nd4j.factory().blas();
      int before = blas.getMaxThreads();
      int parBefore = ai.lathe.model.nn.Par.threads();
      blas.setMaxThreads(Runtime.getRuntime().availableProcessors());
      try {
        SftCommand.run(base);
      } finally {
        blas.setMaxThreads(before);
        ai.lathe.model.nn.Par.setThreads(parBefore);
        // the trainer's weights, moments and activations are off-heap and freed only by the GC:
        // release them before Spark's stages start in this JVM
        System.gc();
      }
    }
  }

  /**
   * A rerun keeps the demo base it finds in base's output only if that base was trained here with
   * the settings the pipeline now has (its lathe-run.json config, and the architecture init-model
   * was asked for): a base kept from other settings would silently mix with stages run anew (the
   * eval judges with it), so it is an error naming the differences. A folder without
   * lathe-run.json is a model given by the user (model.path), not checked.
   */
  static void checkKept(List<String> initArgs, Config base, Config prep) throws Exception {
    Path model = Path.of(base.need("output"));
    Path run = model.resolve("lathe-run.json");
    if (!Files.exists(run)) {
      return;
    }
    base.set("val_fraction=" + prep.number("val_fraction", 0.1), "the pipeline (prep's val_fraction)");
    ObjectMapper om = new ObjectMapper();
    // where the init and the base lie (model, output) is not a setting: a work dir may be moved
    List<String> diff = new java.util.ArrayList<>(differences(withoutPaths(om.readTree(run.toFile()).path("config")),
        withoutPaths(base.root())));
    diff.addAll(architecture(om.readTree(model.resolve("config.json").toFile()), initArgs));
    if (!diff.isEmpty()) {
      throw new IllegalArgumentException(model + ": the demo base kept from an earlier run was trained with other "
          + "settings (" + String.join("; ", diff) + "); delete " + model + " and the outputs trained from it "
          + "(or the whole work dir) to retrain it");
    }
  }

  private static JsonNode withoutPaths(JsonNode config) {
    JsonNode c = config.deepCopy();
    if (c.isObject()) {
      ((com.fasterxml.jackson.databind.node.ObjectNode) c).remove(List.of("model", "output"));
    }
    return c;
  }

  /** The keys whose values differ between the recorded and the planned config ("key: was -> now"), in key order. */
  static List<String> differences(JsonNode recorded, JsonNode planned) {
    java.util.TreeMap<String, String> a = new java.util.TreeMap<>();
    java.util.TreeMap<String, String> b = new java.util.TreeMap<>();
    flatten("", recorded, a);
    flatten("", planned, b);
    java.util.TreeSet<String> keys = new java.util.TreeSet<>(a.keySet());
    keys.addAll(b.keySet());
    List<String> out = new java.util.ArrayList<>();
    for (String k : keys) {
      if (!java.util.Objects.equals(a.get(k), b.get(k))) {
        out.add(k + ": " + a.getOrDefault(k, "(unset)") + " -> " + b.getOrDefault(k, "(unset)"));
      }
    }
    return out;
  }

  private static void flatten(String prefix, JsonNode n, java.util.Map<String, String> out) {
    if (n.isObject()) {
      n.fields().forEachRemaining(e -> flatten(prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey(), e.getValue(),
          out));
    } else if (!n.isMissingNode() && !n.isNull()) {
      // numbers by value (3.0e-3 in YAML and 0.003 read back from JSON are the same setting)
      out.put(prefix, n.isNumber() ? number(n.asDouble()) : n.isValueNode() ? n.asText() : n.toString());
    }
  }

  private static String number(double v) {
    return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
  }

  /** The model's config.json against the init-model arguments (--dim, --layers, ...) the plan has. */
  static List<String> architecture(JsonNode config, List<String> initArgs) {
    String[][] keys = {{"--dim", "hidden_size"}, {"--layers", "num_hidden_layers"}, {"--heads", "num_attention_heads"},
        {"--kv-heads", "num_key_value_heads"}, {"--ffn", "intermediate_size"}};
    List<String> out = new java.util.ArrayList<>();
    for (String[] k : keys) {
      int i = initArgs.indexOf(k[0]);
      if (i >= 0 && !initArgs.get(i + 1).equals(config.path(k[1]).asText())) {
        out.add(k[1] + ": " + config.path(k[1]).asText() + " -> " + initArgs.get(i + 1));
      }
    }
    return out;
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
