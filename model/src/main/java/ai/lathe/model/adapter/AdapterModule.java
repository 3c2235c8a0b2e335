package ai.lathe.model.adapter;

import ai.lathe.model.nn.FrozenLinear;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A trainable adapter around one frozen projection. forward writes the adapted output
 * (base included, so weight-decomposed adapters such as DoRA fit); backward adds the adapter's
 * gradients into its accumulators and writes the input gradient.
 */
public sealed interface AdapterModule permits LoraModule, DoraModule, AdaLoraModule {
  /** Per-workspace activations this module keeps between forward and backward. */
  interface Acts {}

  String path();

  int rank();

  Acts newActs(int rows, org.nd4j.linalg.api.buffer.DataType dtype);

  /** forward: y = adapted(x); training enables dropout with the given seed. */
  void forward(FrozenLinear base, INDArray x, INDArray y, Acts acts, boolean training, long seed);

  /** backward: dx = ∂/∂x + beta·dx; gradients accumulate into the params' grad arrays. */
  void backward(FrozenLinear base, INDArray dy, INDArray dx, double beta, Acts acts);

  List<Param> params();
}
