package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.model.train.TrainMode;
import java.io.Serializable;
import java.util.List;

/** The distributed SFT job's settings (conf/sft.yaml; keys: ConfigReference.SFT), validated on the driver. */
public record SftSettings(
    String model, String data, List<String> langs, String output, String checkpointDir,
    LoraConfig lora, SftTrainer.Options train, int epochs, int maxSteps,
    int partitions, int averagingFrequency, boolean averageOptimizerState,
    String outerOptimizer, double outerLr, double outerMomentum,
    int checkpointEvery, int evalEvery, String quant, TrainMode mode, String kernels) implements Serializable {

  public static SftSettings from(Config c) {
    String out = c.need("output");
    LoraConfig lc = LoraConfig.fromConfig(c);
    int maxSteps = c.integer("train.max_steps", 0);
    SftTrainer.Options o = SftTrainer.Options.fromConfig(c, ConfigReference.TRAIN_SFT.withTotalSteps(Math.max(1, maxSteps)));
    String outer = c.str("distributed.outer_optimizer", "none");
    if (!outer.equals("none") && !outer.equals("nesterov")) {
      throw new IllegalArgumentException(c.source() + ": distributed.outer_optimizer must be none or nesterov");
    }
    Rounds.waitSeconds(c); // read here so the key check sees it; used by the job before the first round
    int freq = c.integer("distributed.averaging_frequency", 8);
    if (freq <= 0) {
      throw new IllegalArgumentException(c.source() + ": distributed.averaging_frequency must be positive");
    }
    return new SftSettings(ExecutorModels.forExecutors(c.need("model")), c.need("data"), c.strings("data_langs", List.of()), out, c.str("checkpoint_dir", out + ".checkpoints"), lc, o,
        c.integer("train.epochs", 1), maxSteps, c.integer("distributed.partitions", 0), freq,
        c.bool("distributed.average_optimizer_state", true), outer, c.number("distributed.outer_lr", 0.7),
        c.number("distributed.outer_momentum", 0.9), c.integer("distributed.checkpoint_every", 1),
        c.integer("distributed.eval_every", 1), ExecutorModels.quantOf(c), TrainMode.fromConfig(c),
        ai.lathe.model.nn.Kernels.setting(c));
  }

  /** The same settings with the total step count fixed once the shard sizes are known. */
  public SftSettings withTotalSteps(int total) {
    return new SftSettings(model, data, langs, output, checkpointDir, lora.forSteps(total), train.withTotalSteps(total), epochs, maxSteps, partitions,
        averagingFrequency, averageOptimizerState, outerOptimizer, outerLr, outerMomentum, checkpointEvery, evalEvery, quant, mode,
        kernels);
  }

  /** What a checkpoint must agree with to be resumed: everything that changes the result. */
  public String fingerprint() {
    return Integer.toHexString(List.of(model, data, langs, lora.toString(), train.toString(), epochs, maxSteps, partitions,
        averagingFrequency, averageOptimizerState, outerOptimizer, outerLr, outerMomentum, quant, mode).toString().hashCode());
  }
}
