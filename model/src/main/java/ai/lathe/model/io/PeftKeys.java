package ai.lathe.model.io;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PEFT's tensor names in adapter_model.safetensors, in one place. A module path is the module's
 * name inside the transformers model (model.layers.3.self_attn.q_proj); its tensors are
 * {@code base_model.model.<path>.lora_A.weight} [r, in], {@code ...lora_B.weight} [out, r] and,
 * with DoRA, {@code ...lora_magnitude_vector} [out]. Reading also accepts PEFT's in-memory
 * adapter name ({@code lora_A.default.weight}).
 */
public final class PeftKeys {
  public static final String PREFIX = "base_model.model.";
  public static final String LORA_A = "lora_A";
  public static final String LORA_B = "lora_B";
  public static final String MAGNITUDE = "lora_magnitude_vector";

  /** group 1: module path, 2: layer, 3: self_attn|mlp, 4: module, 5: kind, 6: adapter-name/.weight suffix. */
  private static final Pattern KEY = Pattern.compile(Pattern.quote(PREFIX)
      + "(model\\.layers\\.(\\d{1,9})\\.(self_attn|mlp)\\.([a-z_]+))"
      + "\\.(" + LORA_A + "|" + LORA_B + "|" + MAGNITUDE + ")((?:\\.default)?(?:\\.weight)?)");

  /** How readers describe a valid key in their errors. */
  public static final String EXPECTED = PREFIX + "model.layers.<i>.<self_attn|mlp>.<module>." + LORA_A
      + ".weight, ." + LORA_B + ".weight or ." + MAGNITUDE;

  private PeftKeys() {}

  public static String loraA(String modulePath) {
    return PREFIX + modulePath + "." + LORA_A + ".weight";
  }

  public static String loraB(String modulePath) {
    return PREFIX + modulePath + "." + LORA_B + ".weight";
  }

  public static String magnitude(String modulePath) {
    return PREFIX + modulePath + "." + MAGNITUDE;
  }

  /** The module path of a canonical lora_A key, or null when the key is not one. */
  public static String pathOfLoraA(String key) {
    String suffix = "." + LORA_A + ".weight";
    return key.startsWith(PREFIX) && key.endsWith(suffix)
        ? key.substring(PREFIX.length(), key.length() - suffix.length()) : null;
  }

  /** A parsed tensor key (any accepted spelling). */
  public record Parsed(String modulePath, int layer, String block, String module, String kind, String suffix) {
    /** lora_A and lora_B end in .weight; the magnitude may or may not. */
    public boolean wellFormed() {
      return kind.equals(MAGNITUDE) || suffix.endsWith(".weight");
    }
  }

  /** The parts of a PEFT LoRA/DoRA key of a Llama-style projection, or null when it is not one. */
  public static Parsed parse(String key) {
    Matcher m = KEY.matcher(key);
    if (!m.matches()) {
      return null;
    }
    return new Parsed(m.group(1), Integer.parseInt(m.group(2)), m.group(3), m.group(4), m.group(5), m.group(6));
  }
}
