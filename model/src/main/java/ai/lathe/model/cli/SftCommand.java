package ai.lathe.model.cli;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.Version;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.LocalStore;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.io.TrainedModel;
import ai.lathe.model.train.TrainMode;
import ai.lathe.model.nn.QuantMode;
import ai.lathe.model.nn.Par;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.HfTokenizer;
import ai.lathe.model.train.SftData;
import ai.lathe.model.train.ShardSampler;
import ai.lathe.model.train.SftTrainer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;

/** {@code lathe sft-local}: LoRA SFT on one machine from JSON-lines instruction data. */
public final class SftCommand {
  public static final String USAGE = """
      usage: lathe sft-local --config conf/sft-local.yaml [--set key=value ...]
        Trains a LoRA adapter (or, with train.mode full, every weight) with completion-only SFT
        on one machine and writes a PEFT adapter folder (full: a Hugging Face model folder),
        plus lathe-run.json and metrics.jsonl.""";

  private SftCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("sft-local", argv, Set.of()).allow(Set.of("config", "set"));
    Config c = Config.load(a.has("config") ? a.path("config") : null, a.all("set"));
    try (var lease = OutputGuard.acquire(LocalStore.INSTANCE, outputs(c, Settings.from(c)))) {
      run(c);
    }
    return 0;
  }

  /** sft-local's output (an adapter) and inputs (model, data). */
  static OutputGuard.Spec outputs(Config c, Settings s) {
    OutputGuard.Kind kind = s.mode().full() ? OutputGuard.Kind.TRAINED_MODEL : OutputGuard.Kind.ADAPTER;
    return new OutputGuard.Spec("sft-local", s.output().toString(), kind, c.bool("overwrite", false),
        List.of(OutputGuard.Input.of("model", s.model().toString()), OutputGuard.Input.of("data", s.data().toString())));
  }

  /** sft-local's keys (ConfigReference.SFT_LOCAL), read before any work. */
  public record Settings(Path model, Path data, Path output, int threads, LoraConfig lora, QuantMode quant,
      String format, Map<String, String> fields, String template, double valFraction,
      Set<String> langs, int maxRows, int epochs, int maxSteps, int evalEvery, SftTrainer.Options train,
      boolean warmupSet, TrainMode mode, boolean gradientCheckpointing) {

    /** Checks the keys (old spellings renamed), then reads them. */
    public static Settings from(Config c) {
      c.validate(ConfigReference.SFT_LOCAL);
      QuantMode quant = QuantMode.fromConfig(c);
      ai.lathe.model.nn.Kernels.setting(c); // checked here, applied by run
      Map<String, String> fields = new LinkedHashMap<>();
      if (c.node("fields") != null) {
        c.node("fields").fields().forEachRemaining(e -> fields.put(e.getKey(), e.getValue().asText()));
      }
      SftTrainer.Options train = SftTrainer.Options.fromConfig(c, ConfigReference.TRAIN_LOCAL);
      return new Settings(Path.of(c.need("model")), Path.of(c.need("data")), Path.of(c.need("output")),
          c.integer("train.threads", 0), LoraConfig.fromConfig(c), quant, c.str("format", "alpaca"), fields,
          c.str("template", ChatTemplate.defaultName(Path.of(c.need("model")), "llama2")), c.number("val_fraction", 0.1), new HashSet<>(c.strings("data_langs", List.of())),
          c.integer("max_rows", 0), c.integer("train.epochs", 1), c.integer("train.max_steps", 0),
          c.integer("distributed.eval_every", 0), train, c.has("train.warmup_steps"), TrainMode.fromConfig(c),
          c.bool("train.gradient_checkpointing", false));
    }

    /** The train options once the step count is known (warmup default: max(1, steps / 20)). */
    public SftTrainer.Options forSteps(int total) {
      SftTrainer.Options o = train.withTotalSteps(total);
      return warmupSet ? o : o.withWarmup(Math.max(1, total / 20));
    }
  }

  /**
   * Runs the local trainer as configured (keys checked against ConfigReference.SFT_LOCAL first,
   * old spellings renamed); returns the run record written beside the adapter.
   */
  public static ObjectNode run(Config c) throws Exception {
    return run(c, m -> { });
  }

  /** As above; trained sees the model in memory after the last step (tests compare the written copy). */
  public static ObjectNode run(Config c, java.util.function.Consumer<LlamaModel> trained) throws Exception {
    Settings cfg = Settings.from(c);
    OutputGuard.check(LocalStore.INSTANCE, outputs(c, cfg));
    Path modelDir = cfg.model();
    Path dataPath = cfg.data();
    Path out = cfg.output();
    Par.setThreads(cfg.threads() > 0 ? cfg.threads() : Runtime.getRuntime().availableProcessors());
    ai.lathe.model.nn.Gpu.checkOnce();
    ai.lathe.model.nn.Kernels.apply(ai.lathe.model.nn.Kernels.setting(c));
    int seqLen = cfg.train().seqLen();
    LoraConfig lc = cfg.lora();
    HeapAdvice.print(modelDir, cfg.quant().base(), cfg.quant().doubleQuant());
    SftData data;
    String tokSha;
    // data before weights: tokenizer.json's parse is garbage again before the NF4 codes fill the heap
    try (HfTokenizer tok = HfTokenizer.open(modelDir.resolve("tokenizer.json"))) {
      tok.checkFits(ai.lathe.model.LlamaConfig.read(modelDir.resolve("config.json")).vocabSize(), modelDir);
      data = SftData.load(dataPath, cfg.format(), cfg.fields().isEmpty() ? null : cfg.fields(),
          ChatTemplate.of(cfg.template()), tok, seqLen, cfg.valFraction(), cfg.langs(), cfg.maxRows());
      tokSha = tok.sha256();
    }
    var weights = HfCheckpoint.load(modelDir, DataType.FLOAT, cfg.quant().base(), cfg.quant().doubleQuant());
    if (data.train.isEmpty()) {
      throw new IllegalArgumentException(dataPath + ": no training rows");
    }
    int bsz = cfg.train().batchSize();
    int accum = cfg.train().gradAccum();
    int perEpoch = (data.train.size() + bsz * accum - 1) / (bsz * accum);
    int total = cfg.maxSteps() > 0 ? cfg.maxSteps() : perEpoch * cfg.epochs();
    SftTrainer.Options o = cfg.forSteps(total);
    lc = lc.forSteps(total); // AdaLoRA's total_step defaults to the run's steps
    long seed = o.seed();
    boolean full = cfg.mode().full();
    AdapterSet adapters = full ? null : AdapterSet.init(weights, lc, seed, DataType.FLOAT);
    LlamaModel model = new LlamaModel(weights, adapters, DataType.FLOAT);
    long trainable = full ? cfg.mode().attach(model).parameterCount() : adapters.parameterCount();
    model.setGradientCheckpointing(cfg.gradientCheckpointing());
    HeapAdvice.printEstimate(weights, bsz, seqLen, cfg.gradientCheckpointing(), trainable);
    SftTrainer trainer = new SftTrainer(model, o);
    System.out.printf("sft-local: %d train / %d validation rows (%d truncated to %d tokens, %d without completion),"
        + " %d steps, %s, %,d trainable parameters%n", data.train.size(), data.validation.size(),
        data.truncated, seqLen, data.dropped, total,
        full ? "full-parameter" : "LoRA r " + lc.r() + " on " + lc.targetModules(), trainable);
    ObjectMapper om = new ObjectMapper();
    List<String> metrics = new ArrayList<>();
    int evalEvery = cfg.evalEvery();
    double val0 = data.validation.isEmpty() ? Double.NaN
        : SftTrainer.validationLoss(model, data.validation, bsz, seqLen);
    if (!Double.isNaN(val0)) {
      System.out.printf("step 0: val_loss %.4f%n", val0);
      metrics.add(om.writeValueAsString(om.createObjectNode().put("step", 0).put("val_loss", val0)));
    }
    // examples in content order, so the single-machine run equals a one-partition Spark run
    List<ChatTemplate.Tokens> shard = new ArrayList<>(data.train);
    ShardSampler<ai.lathe.model.text.ChatTemplate.Tokens> sampler = new ShardSampler<>(shard, 0, seed, bsz, accum);
    double lastLoss = Double.NaN;
    double lastVal = val0;
    long tokens = 0;
    double seconds = 0;
    for (int s = 0; s < total; s++) {
      List<List<ChatTemplate.Tokens>> micro = sampler.microBatches(s);
      SftTrainer.StepStats st = trainer.step(micro);
      lastLoss = st.loss();
      tokens += st.tokens();
      seconds += st.seconds();
      ObjectNode line = om.createObjectNode().put("step", st.step()).put("train_loss", st.loss())
          .put("lr", st.lr()).put("grad_norm", st.gradNorm()).put("tokens", st.tokens())
          .put("tokens_per_s", st.tokens() / st.seconds());
      boolean eval = !data.validation.isEmpty() && (evalEvery > 0 && st.step() % evalEvery == 0 || s == total - 1);
      if (eval) {
        lastVal = SftTrainer.validationLoss(model, data.validation, bsz, seqLen);
        line.put("val_loss", lastVal);
      }
      metrics.add(om.writeValueAsString(line));
      System.out.printf("step %d/%d: loss %.4f, lr %.2e, grad_norm %.3f, %.0f tokens/s%s%n", st.step(), total,
          st.loss(), st.lr(), st.gradNorm(), st.tokens() / st.seconds(),
          eval ? String.format(", val_loss %.4f", lastVal) : "");
    }
    ObjectNode run = om.createObjectNode();
    run.put("job", "sft-local");
    run.put("code_version", Version.get());
    run.set("config", c.root());
    ObjectNode dataInfo = run.putObject("data");
    dataInfo.put("path", dataPath.toString());
    dataInfo.put("sha256", ai.lathe.model.io.Hashing.sha256(dataPath));
    dataInfo.put("train_rows", data.train.size());
    dataInfo.put("validation_rows", data.validation.size());
    dataInfo.put("tokenizer_sha256", tokSha);
    ObjectNode m = run.putObject("metrics");
    m.put("steps", total);
    m.put("final_train_loss", lastLoss);
    m.put("initial_val_loss", val0);
    m.put("final_val_loss", lastVal);
    m.put("tokens", tokens);
    m.put("tokens_per_s", tokens / Math.max(1e-9, seconds));
    m.put("trainable_parameters", trainable);
    Map<String, String> extra = Map.of("metrics.jsonl", String.join("\n", metrics) + "\n");
    if (full) {
      TrainedModel.write(out, weights, "F32", TrainedModel.MAX_SHARD_BYTES, modelDir, run, extra);
    } else {
      PeftAdapter.write(out, adapters, modelDir.toAbsolutePath().toString(), run, extra);
    }
    trained.accept(model);
    System.out.printf("wrote %s %s (val_loss %.4f -> %.4f)%n", full ? "model" : "adapter", out, val0, lastVal);
    return run;
  }
}
