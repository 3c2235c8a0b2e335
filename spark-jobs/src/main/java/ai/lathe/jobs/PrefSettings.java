package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.model.train.TrainMode;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.List;

/**
 * Settings of the preference jobs (conf/dpo.yaml, conf/kto.yaml), validated on the driver.
 * kind: dpo or kto. adapter: the adapter training starts from (e.g. the SFT adapter; its
 * config replaces lora.*), null = a fresh LoRA. referenceAdapter: null = the base with
 * adapters disabled. mode: train.mode lora, or full (the base's own weights train; the
 * reference stays the frozen base, i.e. the starting weights).
 */
public record PrefSettings(
    String kind, String model, String data, List<String> langs, String output, String checkpointDir,
    String adapter, String referenceAdapter, boolean referenceOnTheFly, int referenceBatch,
    LoraConfig lora, SftTrainer.Options train, int epochs, int maxSteps, int partitions, int averagingFrequency,
    int checkpointEvery, int evalEvery, String lossType, double beta, double labelSmoothing,
    double desirableWeight, double undesirableWeight, String quant, boolean averageOptimizerState,
    ParameterAveraging.Outer outer, String kernels, TrainMode mode) implements Serializable {

  public static PrefSettings from(Config c, String kind) throws IOException {
    TrainMode mode = TrainMode.fromConfig(c);
    String out = c.need("output");
    String adapter = c.str("adapter", null);
    if (mode.full() && adapter != null) {
      throw new IllegalArgumentException(c.source() + ": adapter (a starting LoRA adapter) does not apply to "
          + "train.mode full, which trains the model's own weights: merge the adapter into the base first, or use lora");
    }
    LoraConfig lc;
    if (adapter != null) {
      lc = PeftAdapter.readConfig(Path.of(adapter));
    } else {
      lc = LoraConfig.fromConfig(c);
    }
    if (mode.full() && lc.adalora() != null) {
      throw new IllegalArgumentException(c.source() + ": lora.type adalora does not apply to train.mode full "
          + "(AdaLoRA allocates adapter ranks; full mode trains the model's own weights)");
    }
    int maxSteps = c.integer("train.max_steps", 0);
    SftTrainer.Options o = SftTrainer.Options.fromConfig(c, ConfigReference.TRAIN_PREF.withTotalSteps(Math.max(1, maxSteps)));
    Rounds.waitSeconds(c); // read here so the key check sees it; used by the job before the first round
    int freq = c.integer("distributed.averaging_frequency", 8);
    if (freq <= 0) {
      throw new IllegalArgumentException(c.source() + ": distributed.averaging_frequency must be positive");
    }
    String loss = c.str("loss.type", kind.equals("kto") ? "kto" : "sigmoid");
    if (kind.equals("kto") != loss.equals("kto")) {
      throw new IllegalArgumentException(c.source() + ": loss.type '" + loss + "' does not fit the " + kind
          + " job (dpo: sigmoid, ipo, hinge, robust; kto: kto)");
    }
    double beta = c.number("loss.beta", 0.1);
    // label smoothing is DPO's, the example weights KTO's (the other job does not list them)
    boolean kto = kind.equals("kto");
    double eps = kto ? 0.0 : c.number("loss.label_smoothing", 0.0);
    double wd = kto ? c.number("loss.desirable_weight", 1.0) : 1.0;
    double wu = kto ? c.number("loss.undesirable_weight", 1.0) : 1.0;
    if (!(beta > 0) || !(eps >= 0 && eps < (loss.equals("robust") ? 0.5 : 1.0)) || !(wd > 0) || !(wu > 0)) {
      throw new IllegalArgumentException(c.source() + ": need loss.beta > 0, 0 <= loss.label_smoothing < "
          + (loss.equals("robust") ? "0.5 (robust)" : "1") + ", loss.desirable_weight and loss.undesirable_weight > 0");
    }
    if (kind.equals("kto") && o.batchSize() < 2) {
      System.out.println("kto: train.batch_size 1 has no mismatched pairs, so the KL term is 0");
    }
    return new PrefSettings(kind, ExecutorModels.forExecutors(c.need("model")), c.need("data"), c.strings("data_langs", List.of()), out,
        c.str("checkpoint_dir", out + ".checkpoints"), adapter, ExecutorModels.forExecutors(c.str("reference.adapter", null)),
        c.bool("reference.on_the_fly", false), c.integer("reference.batch_size", 8), lc, o,
        c.integer("train.epochs", 1), maxSteps, c.integer("distributed.partitions", 0), freq,
        c.integer("distributed.checkpoint_every", 1), c.integer("distributed.eval_every", 1), loss,
        beta, eps, wd, wu, ExecutorModels.quantOf(c), c.bool("distributed.average_optimizer_state", true),
        outer(c), ai.lathe.model.nn.Kernels.setting(c), mode);
  }

  /** distributed.outer_optimizer (none | nesterov), outer_lr, outer_momentum: as in sft. */
  static ParameterAveraging.Outer outer(Config c) {
    try {
      return new ParameterAveraging.Outer(c.str("distributed.outer_optimizer", "none"),
          c.number("distributed.outer_lr", 0.7), c.number("distributed.outer_momentum", 0.9));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(c.source() + ": " + e.getMessage());
    }
  }

  public PrefSettings withTotalSteps(int total) {
    return new PrefSettings(kind, model, data, langs, output, checkpointDir, adapter, referenceAdapter,
        referenceOnTheFly, referenceBatch, lora.forSteps(total), train.withTotalSteps(total), epochs, maxSteps, partitions, averagingFrequency, checkpointEvery,
        evalEvery, lossType, beta, labelSmoothing, desirableWeight, undesirableWeight, quant, averageOptimizerState,
        outer, kernels, mode);
  }

  /** What a checkpoint must agree with to be resumed. */
  public String fingerprint() {
    return Integer.toHexString(List.of(kind, model, data, langs, String.valueOf(adapter),
        adapter == null ? "" : RefLogpsJob.adapterSha(adapter), String.valueOf(referenceAdapter),
        referenceAdapter == null ? "" : RefLogpsJob.adapterSha(referenceAdapter), lora.toString(), train.toString(), epochs, maxSteps, partitions,
        averagingFrequency, lossType, beta, labelSmoothing, desirableWeight, undesirableWeight, quant,
        averageOptimizerState, outer, mode).toString()
        .hashCode());
  }
}
