package ai.lathe.model.io;

import ai.lathe.model.adapter.AdaLoraConfig;
import ai.lathe.model.adapter.AdaLoraExport;
import ai.lathe.model.adapter.AdaLoraModule;
import ai.lathe.model.adapter.LoraConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reading PEFT AdaLoRA folders (peft_type ADALORA) as the plain LoRA they equal, so every reader
 * (score, ref-logps, merge, training from an adapter) accepts them: the config becomes
 * {@link AdaLoraExport#loraConfig} and the tensors {@link AdaLoraExport#loraTensors}, written to a
 * temporary safetensors file that the ordinary validating loader then opens.
 */
public final class AdaLoraFolder {
  private static final Pattern KEY = Pattern.compile(
      "base_model\\.model\\.(model\\.layers\\.\\d{1,9}\\.(?:self_attn|mlp)\\.[a-z_]+)\\.lora_([AEB])(?:\\.default)?");

  private AdaLoraFolder() {}

  public static boolean isAdaLora(JsonNode cfg) {
    return cfg.path("peft_type").asText("").equals("ADALORA");
  }

  /** The AdaLoRA config (PEFT fields; rank_pattern read separately by {@link #keptByPath}). */
  public static LoraConfig adaConfig(JsonNode n) {
    ObjectNode lora = n.deepCopy();
    lora.put("peft_type", "LORA");
    lora.remove("rank_pattern");
    lora.remove("alpha_pattern");
    LoraConfig base = LoraConfig.fromPeftJson(lora);
    AdaLoraConfig d = AdaLoraConfig.PEFT_DEFAULTS;
    AdaLoraConfig a = new AdaLoraConfig(n.path("init_r").asInt(d.initR()), n.path("target_r").asInt(d.targetR()),
        n.path("tinit").asInt(d.tinit()), n.path("tfinal").asInt(d.tfinal()), n.path("deltaT").asInt(d.deltaT()),
        n.path("beta1").asDouble(d.beta1()), n.path("beta2").asDouble(d.beta2()),
        n.path("orth_reg_weight").asDouble(d.orthRegWeight()), Math.max(0, n.path("total_step").asInt(0)));
    return new LoraConfig(a.initR(), base.loraAlpha(), base.targetModules(), base.loraDropout(), false, false,
        Map.of(), Map.of(), base.layersToTransform(), a);
  }

  /**
   * Kept rank counts from rank_pattern ({"<module>.lora_E": [bool × init_r]}); empty when
   * rank_pattern is null (every module at init_r).
   */
  public static Map<String, Integer> keptByPath(JsonNode n, int initR) {
    Map<String, Integer> out = new TreeMap<>();
    JsonNode rp = n.path("rank_pattern");
    if (rp.isMissingNode() || rp.isNull()) {
      return out;
    }
    rp.fields().forEachRemaining(e -> {
      String key = e.getKey().replaceFirst("\\.default$", "");
      if (!key.endsWith(".lora_E") || !e.getValue().isArray() || e.getValue().size() != initR) {
        throw new IllegalArgumentException("rank_pattern entry '" + e.getKey() + "' must be <module>.lora_E: a list "
            + "of " + initR + " booleans (init_r)");
      }
      int k = 0;
      for (JsonNode b : e.getValue()) {
        if (!b.isBoolean()) {
          throw new IllegalArgumentException("rank_pattern entry '" + e.getKey() + "' holds " + b + ", not a boolean");
        }
        k += b.booleanValue() ? 1 : 0;
      }
      out.put(key.substring(0, key.length() - ".lora_E".length()), k);
    });
    return out;
  }

  /** The plain LoRA config this AdaLoRA config equals. */
  public static LoraConfig loraConfig(JsonNode n) {
    LoraConfig ada = adaConfig(n);
    return AdaLoraExport.loraConfig(ada, keptByPath(n, ada.adalora().initR()));
  }

  /**
   * Converts dir's AdaLoRA weights to the equivalent LoRA tensors in a temporary safetensors file
   * (deleted at exit). Every tensor must be an A, E or B of a module with shapes [k, in], [k, 1],
   * [out, k], k its kept count (init_r without rank_pattern).
   */
  public static Path loraWeights(Path dir, JsonNode n) throws IOException {
    LoraConfig ada = adaConfig(n);
    int initR = ada.adalora().initR();
    Map<String, Integer> kept = keptByPath(n, initR);
    Path file = dir.resolve(PeftAdapter.WEIGHTS);
    Map<String, Safetensors.Tensor[]> byModule = new TreeMap<>();
    try (Safetensors st = Safetensors.open(file)) {
      for (Safetensors.Entry e : st.entries().values()) {
        Matcher m = KEY.matcher(e.name());
        if (!m.matches()) {
          throw new IllegalArgumentException(file + ": tensor '" + e.name() + "' is not an AdaLoRA weight "
              + "(expected base_model.model.model.layers.<i>.<self_attn|mlp>.<module>.lora_A, .lora_E or .lora_B)");
        }
        int slot = "AEB".indexOf(m.group(2));
        Safetensors.Tensor[] ts = byModule.computeIfAbsent(m.group(1), p -> new Safetensors.Tensor[3]);
        if (ts[slot] != null) {
          throw new IllegalArgumentException(file + ": tensor '" + e.name() + "' appears twice");
        }
        ts[slot] = new Safetensors.Tensor(e.shape(), st.readFloats(e.name()));
      }
    }
    Map<String, Safetensors.Tensor> lora = new LinkedHashMap<>();
    double c = AdaLoraModule.scaleOf(ada.loraAlpha(), initR);
    for (var e : byModule.entrySet()) {
      String path = e.getKey();
      Safetensors.Tensor[] t = e.getValue();
      for (int s = 0; s < 3; s++) {
        if (t[s] == null) {
          throw new IllegalArgumentException(file + ": tensor 'base_model.model." + path + ".lora_" + "AEB".charAt(s)
              + "' missing from the adapter");
        }
      }
      int k = kept.getOrDefault(path, initR);
      long in = t[0].shape().length == 2 ? t[0].shape()[1] : -1;
      long out = t[2].shape().length == 2 ? t[2].shape()[0] : -1;
      check(file, path, "A", t[0], new long[] {k, in}, k);
      check(file, path, "E", t[1], new long[] {k, 1}, k);
      check(file, path, "B", t[2], new long[] {out, k}, k);
      lora.putAll(AdaLoraExport.loraTensors(path, t[0].data(), t[1].data(), t[2].data(), k, (int) in, (int) out, c));
    }
    Path tmp = Files.createTempDirectory("lathe-adalora");
    tmp.toFile().deleteOnExit();
    Path w = tmp.resolve(PeftAdapter.WEIGHTS);
    Safetensors.write(w, lora, "F32", Map.of("format", "pt"));
    w.toFile().deleteOnExit();
    return w;
  }

  private static void check(Path file, String path, String which, Safetensors.Tensor t, long[] want, int k) {
    if (want[0] < 0 || want[1] < 0 || !Arrays.equals(t.shape(), want)) {
      throw new IllegalArgumentException(file + ": tensor 'base_model.model." + path + ".lora_" + which + "' has shape "
          + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(want) + " (" + k + " kept ranks by "
          + "adapter_config.json's rank_pattern)");
    }
  }
}
