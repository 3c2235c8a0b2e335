package ai.lathe.model.train;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.TrainableWeights;
import java.util.List;

/**
 * What a training job trains: adapters (train.mode lora, the default) or every weight of the
 * model (train.mode full) except the tensors train.freeze names (regular expressions searched in
 * Hugging Face tensor names; each must match at least one tensor).
 */
public record TrainMode(boolean full, List<String> freeze) implements java.io.Serializable {
  public static final TrainMode LORA = new TrainMode(false, List.of());

  public TrainMode {
    freeze = List.copyOf(freeze);
    if (!full && !freeze.isEmpty()) {
      throw new IllegalArgumentException("train.freeze applies to train.mode full only (LoRA trains adapters, "
          + "the base is frozen anyway)");
    }
  }

  /** Reads train.mode (lora | full) and train.freeze. */
  public static TrainMode fromConfig(Config c) {
    String m = c.str("train.mode", "lora");
    if (!m.equals("lora") && !m.equals("full")) {
      throw new IllegalArgumentException("train.mode must be lora or full, got '" + m + "'");
    }
    return new TrainMode(m.equals("full"), c.strings("train.freeze", List.of()));
  }

  /** Makes model train its own weights (full mode); the quantised-base check is TrainableWeights'. */
  public TrainableWeights attach(LlamaModel model) {
    LlamaWeights w = model.weights();
    TrainableWeights t = TrainableWeights.of(w, freeze);
    model.setTrainable(t);
    return t;
  }
}
