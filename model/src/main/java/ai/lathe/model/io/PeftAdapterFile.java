package ai.lathe.model.io;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.LoraConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * A PEFT adapter folder opened for one model, its config and tensors checked against each other
 * and against the model before any value is read: the one loader every command uses (score,
 * training from an adapter, reference log-probs, merge). The rules:
 * <ul>
 *   <li>every tensor key is {@code base_model.model.model.layers.<i>.<self_attn|mlp>.<module>.}
 *       followed by {@code lora_A.weight}, {@code lora_B.weight} or (DoRA) {@code
 *       lora_magnitude_vector} (PEFT's {@code .default} adapter-name and {@code .weight} variants
 *       accepted), of dtype F32, BF16 or F16; anything else is refused;
 *   <li>the layer exists in the model and is in layers_to_transform (when set); the module is in
 *       target_modules; a magnitude needs use_dora;
 *   <li>every adapted (layer, module) has lora_A [r, in] and lora_B [out, r] (and a magnitude [out]
 *       with DoRA), r from r / rank_pattern, in and out the model's module shape.
 * </ul>
 * Violations are IllegalArgumentExceptions naming the weights file and the tensor key.
 */
public final class PeftAdapterFile implements AutoCloseable {
  /** The tensor keys of one adapted module (magnitude null without DoRA). */
  public record Keys(String loraA, String loraB, String magnitude) {}

  private final Path dir;
  private final LoraConfig config;
  private final Safetensors weights;
  private final Map<String, Keys> modules; // by module path, e.g. model.layers.0.self_attn.q_proj

  private PeftAdapterFile(Path dir, LoraConfig config, Safetensors weights, Map<String, Keys> modules) {
    this.dir = dir;
    this.config = config;
    this.weights = weights;
    this.modules = modules;
  }

  /** Opens and validates dir's adapter for this model; the caller closes it. */
  public static PeftAdapterFile open(Path dir, LlamaConfig model) throws IOException {
    LoraConfig lc = PeftAdapter.readConfig(dir);
    Safetensors st = Safetensors.open(PeftAdapter.loraWeightsFile(dir));
    try {
      return new PeftAdapterFile(dir, lc, st, validate(st.file(), lc, st.entries(), model));
    } catch (RuntimeException e) {
      st.close();
      throw e;
    }
  }

  public Path dir() {
    return dir;
  }

  public LoraConfig config() {
    return config;
  }

  public Path weightsFile() {
    return weights.file();
  }

  /** Whether this adapter adapts (layer, module). */
  public boolean adapts(int layer, String module) {
    return modules.containsKey(LoraConfig.modulePath(layer, module));
  }

  /** The validated keys of an adapted module; null when the adapter leaves it alone. */
  public Keys keys(int layer, String module) {
    return modules.get(LoraConfig.modulePath(layer, module));
  }

  public int rank(int layer, String module) {
    return config.rankFor(LoraConfig.modulePath(layer, module));
  }

  /** Reads a validated tensor (a key from {@link #keys}). */
  public float[] read(String key) throws IOException {
    return weights.readFloats(key);
  }

  /** Every adapted module's tensors under their canonical PEFT names (no adapter-name segment). */
  public Map<String, Safetensors.Tensor> tensors() throws IOException {
    Map<String, Safetensors.Tensor> out = new java.util.LinkedHashMap<>();
    for (var e : modules.entrySet()) {
      Keys k = e.getValue();
      out.put(PeftKeys.loraA(e.getKey()), tensor(k.loraA()));
      out.put(PeftKeys.loraB(e.getKey()), tensor(k.loraB()));
      if (k.magnitude() != null) {
        out.put(PeftKeys.magnitude(e.getKey()), tensor(k.magnitude()));
      }
    }
    return out;
  }

  private Safetensors.Tensor tensor(String key) throws IOException {
    return new Safetensors.Tensor(weights.entry(key).shape(), weights.readFloats(key));
  }

  @Override
  public void close() throws IOException {
    weights.close();
  }

  /** Checks the tensors against the config and the model; returns each adapted module's keys. */
  static Map<String, Keys> validate(Path file, LoraConfig lc, Map<String, Safetensors.Entry> entries, LlamaConfig model) {
    checkLayersExist(file, lc, model);
    Map<String, String[]> found = new HashMap<>(); // module path -> {A, B, magnitude}
    for (Safetensors.Entry e : entries.values()) {
      String key = e.name();
      PeftKeys.Parsed m = PeftKeys.parse(key);
      if (m == null || !m.wellFormed()) {
        throw new IllegalArgumentException(file + ": tensor '" + key + "' is not a LoRA weight of a Llama projection "
            + "(expected " + PeftKeys.EXPECTED + ")");
      }
      String kind = m.kind();
      int layer = m.layer();
      String module = m.module();
      String path = m.modulePath();
      if (!LlamaWeights.MODULES.contains(module) || !LoraConfig.modulePath(0, module).equals(
          path.replaceFirst("layers\\.\\d+\\.", "layers.0."))) {
        throw new IllegalArgumentException(file + ": tensor '" + key + "' adapts '" + m.block() + "." + module
            + "', which is not a Llama projection " + LlamaWeights.MODULES);
      }
      if (layer >= model.numLayers()) {
        throw new IllegalArgumentException(file + ": tensor '" + key + "' is for layer " + layer + " but the model has "
            + model.numLayers() + " layers (num_hidden_layers)");
      }
      if (!lc.targetModules().contains(module)) {
        throw new IllegalArgumentException(file + ": tensor '" + key + "' adapts " + module + ", which is not in "
            + "adapter_config.json's target_modules " + lc.targetModules());
      }
      if (!lc.transformsLayer(layer)) {
        throw new IllegalArgumentException(file + ": tensor '" + key + "' adapts layer " + layer + ", which is not in "
            + "adapter_config.json's layers_to_transform " + lc.layersToTransform());
      }
      int slot = kind.equals(PeftKeys.LORA_A) ? 0 : kind.equals(PeftKeys.LORA_B) ? 1 : 2;
      if (slot == 2 && !lc.useDora()) {
        throw new IllegalArgumentException(file + ": tensor '" + key + "' is a DoRA magnitude but adapter_config.json "
            + "has use_dora false");
      }
      if (!e.dtype().equals("F32") && !e.dtype().equals("BF16") && !e.dtype().equals("F16")) {
        throw new IllegalArgumentException(file + ": tensor '" + key + "' has dtype " + e.dtype()
            + "; LoRA weights must be F32, BF16 or F16");
      }
      String[] ks = found.computeIfAbsent(path, p -> new String[3]);
      if (ks[slot] != null) {
        throw new IllegalArgumentException(file + ": tensors '" + ks[slot] + "' and '" + key + "' hold the same weight");
      }
      ks[slot] = key;
    }
    Map<String, Keys> out = new HashMap<>();
    for (int l = 0; l < model.numLayers(); l++) {
      if (!lc.transformsLayer(l)) {
        continue;
      }
      for (String module : lc.targetModules()) {
        String path = LoraConfig.modulePath(l, module);
        String[] ks = found.getOrDefault(path, new String[3]);
        int[] shape = model.moduleShape(module);
        int r = lc.rankFor(path);
        String a = need(file, ks[0], PeftKeys.loraA(path));
        String b = need(file, ks[1], PeftKeys.loraB(path));
        checkShape(file, entries.get(a), module, shape, new long[] {r, shape[1]}, 1, lc, path);
        checkShape(file, entries.get(b), module, shape, new long[] {shape[0], r}, 0, lc, path);
        String mag = null;
        if (lc.useDora()) {
          mag = need(file, ks[2], PeftKeys.magnitude(path));
          checkShape(file, entries.get(mag), module, shape, new long[] {shape[0]}, 0, lc, path);
        }
        out.put(path, new Keys(a, b, mag));
      }
    }
    return out;
  }

  private static void checkLayersExist(Path file, LoraConfig lc, LlamaConfig model) {
    try {
      lc.checkLayersWithin(model.numLayers());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file.resolveSibling(PeftAdapter.CONFIG) + ": " + e.getMessage(), e);
    }
  }

  private static String need(Path file, String key, String expected) {
    if (key == null) {
      throw new IllegalArgumentException(file + ": tensor '" + expected + "' missing from the adapter");
    }
    return key;
  }

  /**
   * A tensor's shape must be exactly as expected: a wrong in/out dimension means an adapter for
   * another base model, a wrong rank means adapter_config.json's r/rank_pattern disagrees.
   */
  private static void checkShape(Path file, Safetensors.Entry e, String module, int[] moduleShape, long[] want,
      int modelDim, LoraConfig lc, String path) {
    long[] got = e.shape();
    if (Arrays.equals(got, want)) {
      return;
    }
    String base = file + ": tensor '" + e.name() + "' has shape " + Arrays.toString(got) + ", expected "
        + Arrays.toString(want);
    if (got.length != want.length || got[modelDim] != want[modelDim]) {
      throw new IllegalArgumentException(base + ": it does not fit the base model's " + module + " ["
          + moduleShape[0] + ", " + moduleShape[1] + "] (an adapter for a different base model?)");
    }
    throw new IllegalArgumentException(base + ": adapter_config.json gives " + path + " rank " + lc.rankFor(path)
        + " (r " + lc.r() + (lc.rankPattern().isEmpty() ? "" : ", rank_pattern " + lc.rankPattern()) + ")");
  }
}
