package ai.lathe.jobs;

import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.TrainableWeights;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.io.TrainedModel;
import ai.lathe.model.train.AdamW;
import ai.lathe.model.train.TrainMode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * train.mode full in the parameter-averaging jobs (sft, dpo, kto): the state that travels is the
 * model's own trainable weights; each task thread trains a private copy of the executor's cached
 * base (so the base, and any reference engine over it, stays the frozen starting model); the
 * output is the base with every trained tensor replaced, as a Hugging Face model folder.
 */
final class FullModel {
  private FullModel() {}

  /**
   * The trainable tensors of the base at the start (a BF16 base widened to F32), on the driver:
   * also the check that the base is not NF4 and that every freeze pattern names a tensor, before
   * any executor work.
   */
  static List<Param> initParams(String model, String quant, TrainMode mode) {
    return TrainableWeights.of(TrainableWeights.copyOf(ExecutorModels.get(model, quant)), mode.freeze()).params();
  }

  /** A task thread's engine: a private copy of the cached base w whose own weights train. */
  static ParameterAveraging.Engine engine(LlamaWeights w, TrainMode mode) {
    LlamaModel m = new LlamaModel(TrainableWeights.copyOf(w), null, DataType.FLOAT);
    mode.attach(m);
    return new ParameterAveraging.Engine(m, null);
  }

  /** Loads a broadcast state: into the adapters (with AdaLoRA's statistics), or into the model's own weights. */
  static void load(AdapterState st, ParameterAveraging.Engine e, AdamW opt) {
    if (e.adapters() != null) {
      st.applyTo(e.adapters(), opt);
    } else {
      st.applyTo(e.model().params(), opt);
    }
  }

  /** The engine's trainable tensors as a state (AdaLoRA's statistics travel with an adapter). */
  static AdapterState state(ParameterAveraging.Engine e, AdamW opt) {
    return e.adapters() != null ? AdapterState.of(e.adapters(), opt) : AdapterState.of(e.model().params(), opt);
  }

  /**
   * Writes the trained model to output (atomically, with run info, metrics and plots): a copy of
   * the base with the state's tensors, F32, sharded safetensors, config and the base's tokenizer files.
   */
  static void write(String output, String model, String quant, TrainMode mode, AdapterState state, ObjectNode run,
      List<ObjectNode> metrics, Map<String, List<String>> plots, Configuration hconf) throws Exception {
    LlamaWeights trained = TrainableWeights.copyOf(ExecutorModels.get(model, quant));
    state.applyTo(TrainableWeights.of(trained, mode.freeze()).params(), null);
    Path tokenizers = ExecutorModels.localCopy(model);
    AdapterOutput.write(output, (dir, extra) -> TrainedModel.write(dir, trained, "F32", TrainedModel.MAX_SHARD_BYTES,
        tokenizers, run, extra), metrics, plots, hconf);
  }
}
