package ai.lathe.model.adapter;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.Projection;
import ai.lathe.model.io.PeftKeys;
import ai.lathe.model.io.Safetensors;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The adapter modules of one model: at most one per (layer, projection). */
public final class AdapterSet {
  private final LoraConfig config;
  private final AdapterModule[][] modules; // [layer][Projection ordinal]

  private AdapterSet(LoraConfig config, AdapterModule[][] modules) {
    this.config = config;
    this.modules = modules;
  }

  public LoraConfig config() {
    return config;
  }

  /** ‖W_j‖² per output row of a base module, for DoRA. */
  public interface RowNorms {
    double[] of(int layer, String module);
  }

  /** Fresh adapters for these base weights (DoRA's magnitudes start at their row norms). */
  public static AdapterSet init(LlamaWeights w, LoraConfig lc, long seed, DataType dtype) {
    return init(w.config, lc, seed, dtype, (l, m) -> w.layers[l].module(m).rowSquaredNorms());
  }

  /** Fresh LoRA adapters (A random, B zero), seeded per module so adding a target never shifts others. */
  public static AdapterSet init(LlamaConfig mc, LoraConfig lc, long seed, DataType dtype) {
    return init(mc, lc, seed, dtype, null);
  }

  /**
   * A container of the right shapes to receive trained values (AdapterState.applyTo): DoRA modules
   * are left unbound to any base weights.
   */
  public static AdapterSet empty(LlamaConfig mc, LoraConfig lc, DataType dtype) {
    AdapterSet a = init(mc, lc, 0, dtype, (l, m) -> new double[mc.moduleShape(m)[0]]);
    for (AdapterModule[] layer : a.modules) {
      for (AdapterModule m : layer) {
        if (m instanceof DoraModule d) {
          d.baseless = true;
        }
      }
    }
    return a;
  }

  /** As above; DoRA needs the base's row norms. */
  public static AdapterSet init(LlamaConfig mc, LoraConfig lc, long seed, DataType dtype, RowNorms norms) {
    if (lc.useDora() && norms == null) {
      throw new IllegalArgumentException("a DoRA adapter needs the base weights to initialise its magnitudes");
    }
    AdapterModule[][] mods = new AdapterModule[mc.numLayers()][Projection.ALL.size()];
    lc.checkLayersWithin(mc.numLayers());
    for (int l = 0; l < mc.numLayers(); l++) {
      if (!lc.transformsLayer(l)) {
        continue; // layers_to_transform leaves this layer unadapted
      }
      for (String m : lc.targetModules()) {
        int mi = Projection.of(m).ordinal();
        String path = LoraConfig.modulePath(l, m);
        int[] shape = mc.moduleShape(m);
        long modSeed = seed * 1_000_003L + l * 31L + mi;
        if (lc.adalora() != null) {
          mods[l][mi] = AdaLoraModule.init(path, shape[1], shape[0], lc.adalora().initR(), lc.loraAlpha(),
              lc.loraDropout(), modSeed, dtype);
          continue;
        }
        LoraModule lora = LoraModule.init(path, shape[1], shape[0], lc.rankFor(path), lc.scaleFor(path),
            lc.loraDropout(), modSeed, dtype);
        mods[l][mi] = lc.useDora() ? DoraModule.init(lora, norms.of(l, m), dtype) : lora;
      }
    }
    return new AdapterSet(lc, mods);
  }

  /** Adapters from PEFT-named tensors; every targeted module must be present with matching shapes. */
  public static AdapterSet fromTensors(LlamaConfig mc, LoraConfig lc, Map<String, Safetensors.Tensor> t,
      String source, DataType dtype) {
    return fromTensors(mc, lc, t, source, dtype, null);
  }

  /** As above; DoRA adapters need the base's row norms (the weights they were trained on). */
  public static AdapterSet fromTensors(LlamaConfig mc, LoraConfig lc, Map<String, Safetensors.Tensor> t,
      String source, DataType dtype, RowNorms norms) {
    AdapterModule[][] mods = new AdapterModule[mc.numLayers()][Projection.ALL.size()];
    lc.checkLayersWithin(mc.numLayers());
    for (int l = 0; l < mc.numLayers(); l++) {
      if (!lc.transformsLayer(l)) {
        continue; // layers_to_transform leaves this layer unadapted
      }
      for (String m : lc.targetModules()) {
        int mi = Projection.of(m).ordinal();
        String path = LoraConfig.modulePath(l, m);
        int[] shape = mc.moduleShape(m);
        int rank = lc.rankFor(path);
        INDArray a = tensor(t, PeftKeys.loraA(path), source, rank, shape[1], dtype);
        INDArray b = tensor(t, PeftKeys.loraB(path), source, shape[0], rank, dtype);
        LoraModule lora = new LoraModule(path, a, b, lc.scaleFor(path), lc.loraDropout());
        if (lc.useDora()) {
          String key = PeftKeys.magnitude(path);
          if (!t.containsKey(key) && t.containsKey(key + ".weight")) {
            key = key + ".weight";
          }
          Safetensors.Tensor mag = t.get(key);
          if (mag == null) {
            throw new IllegalArgumentException(source + ": use_dora is set but tensor '" + key + "' is missing");
          }
          if (!Arrays.equals(mag.shape(), new long[] {shape[0]})) {
            throw new IllegalArgumentException(source + ": tensor '" + key + "' has shape "
                + Arrays.toString(mag.shape()) + ", expected [" + shape[0] + "]");
          }
          double[] wsq = norms != null ? norms.of(l, m) : new double[shape[0]];
          mods[l][mi] = new DoraModule(lora, Nd4j.create(mag.data(), mag.shape(), 'c').castTo(dtype).dup('c'), wsq);
          if (norms == null) {
            ((DoraModule) mods[l][mi]).baseless = true;
          }
        } else {
          mods[l][mi] = lora;
        }
      }
    }
    return new AdapterSet(lc, mods);
  }

  private static INDArray tensor(Map<String, Safetensors.Tensor> t, String key, String source,
      long rows, long cols, DataType dtype) {
    Safetensors.Tensor x = t.get(key);
    if (x == null) {
      throw new IllegalArgumentException(source + ": tensor '" + key + "' missing from the adapter");
    }
    if (!Arrays.equals(x.shape(), new long[] {rows, cols})) {
      throw new IllegalArgumentException(source + ": tensor '" + key + "' has shape "
          + Arrays.toString(x.shape()) + ", expected [" + rows + ", " + cols + "]");
    }
    return Nd4j.create(x.data(), x.shape(), 'c').castTo(dtype).dup('c');
  }

  /** Binds DoRA modules read without base weights to these (LlamaModel does this). */
  public void bindBase(LlamaWeights w) {
    for (int l = 0; l < modules.length; l++) {
      for (int mi = 0; mi < modules[l].length; mi++) {
        if (modules[l][mi] instanceof DoraModule d && d.baseless) {
          d.bindBase(w.layers[l].module(Projection.ALL.get(mi)).rowSquaredNorms());
        }
      }
    }
  }

  public AdapterModule module(int layer, String name) {
    return module(layer, Projection.of(name));
  }

  /** The adapter on projection p of a layer, or null. */
  public AdapterModule module(int layer, Projection p) {
    return modules[layer][p.ordinal()];
  }

  public int numLayers() {
    return modules.length;
  }

  /** All trainable parameters in a fixed order (layer, module, A then B). */
  public List<Param> params() {
    List<Param> ps = new ArrayList<>();
    for (AdapterModule[] layer : modules) {
      for (AdapterModule m : layer) {
        if (m != null) {
          ps.addAll(m.params());
        }
      }
    }
    return ps;
  }

  public long parameterCount() {
    long n = 0;
    for (Param p : params()) {
      n += p.value().length();
    }
    return n;
  }

  /** The AdaLoRA modules in parameter order (empty for LoRA and DoRA). */
  public List<AdaLoraModule> adaLoraModules() {
    List<AdaLoraModule> out = new ArrayList<>();
    for (AdapterModule[] layer : modules) {
      for (AdapterModule m : layer) {
        if (m instanceof AdaLoraModule a) {
          out.add(a);
        }
      }
    }
    return out;
  }

  /** The adapter_config.json PEFT writes for this adapter (AdaLoRA: with its rank_pattern). */
  public com.fasterxml.jackson.databind.node.ObjectNode peftJson(String baseModel) {
    com.fasterxml.jackson.databind.node.ObjectNode o = config.toPeftJson(baseModel);
    if (config.adalora() != null) {
      AdaLoraExport.putRankPattern(o, adaLoraModules());
    }
    return o;
  }

  /** PEFT-named tensors, as written to adapter_model.safetensors (AdaLoRA: sliced to the kept ranks). */
  public Map<String, Safetensors.Tensor> toTensors() {
    if (config.adalora() != null) {
      return AdaLoraExport.peftTensors(adaLoraModules());
    }
    Map<String, Safetensors.Tensor> out = new LinkedHashMap<>();
    for (Param p : params()) {
      out.put(p.name(), new Safetensors.Tensor(p.value().shape(),
          p.value().castTo(DataType.FLOAT).dup('c').data().asFloat()));
    }
    return out;
  }

  public void zeroGrads() {
    for (Param p : params()) {
      p.grad().assign(0);
    }
  }
}
