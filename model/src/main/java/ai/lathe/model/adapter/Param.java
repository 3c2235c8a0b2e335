package ai.lathe.model.adapter;

import org.nd4j.linalg.api.ndarray.INDArray;

/** A trainable tensor with its gradient accumulator, named by its PEFT key. */
public record Param(String name, INDArray value, INDArray grad) {}
