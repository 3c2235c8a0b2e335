package ai.lathe.model.io;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * PEFT adapter folders: {@code adapter_config.json} and {@code adapter_model.safetensors} with keys
 * {@code base_model.model.<module>.lora_A.weight} [r, in] and {@code ...lora_B.weight} [out, r].
 * Keys with PEFT's in-memory adapter name ({@code lora_A.default.weight}) are accepted too.
 */
public final class PeftAdapter {
  public static final String CONFIG = "adapter_config.json";
  public static final String WEIGHTS = "adapter_model.safetensors";
  public static final String RUN_INFO = "lathe-run.json";

  private PeftAdapter() {}

  /** Writes the adapter folder atomically; runInfo (may be null) becomes lathe-run.json. */
  public static void write(Path out, AdapterSet adapters, String baseModel, JsonNode runInfo) throws IOException {
    write(out, adapters, baseModel, runInfo, Map.of());
  }

  /** As above, with extra text files (name to content) committed in the same folder. */
  public static void write(Path out, AdapterSet adapters, String baseModel, JsonNode runInfo,
      Map<String, String> extraFiles) throws IOException {
    ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    Map<String, Safetensors.Tensor> tensors = adapters.toTensors();
    ObjectNode cfg = adapters.peftJson(baseModel);
    AtomicDir.write(out, tmp -> {
      om.writeValue(tmp.resolve(CONFIG).toFile(), cfg);
      Safetensors.write(tmp.resolve(WEIGHTS), tensors, "F32", Map.of("format", "pt"));
      if (runInfo != null) {
        om.writeValue(tmp.resolve(RUN_INFO).toFile(), runInfo);
      }
      for (var e : extraFiles.entrySet()) {
        Files.writeString(tmp.resolve(e.getKey()), e.getValue());
      }
      if (adapters.config().adalora() != null) {
        AdaLoraReport.write(tmp, adapters, baseModel); // where the rank budget went (+ the LoRA export)
      }
    });
  }

  public static LoraConfig readConfig(Path dir) throws IOException {
    Path cfg = dir.resolve(CONFIG);
    if (!Files.isRegularFile(cfg)) {
      throw new IOException(dir + ": not an adapter folder (" + CONFIG + " missing)");
    }
    try {
      JsonNode n = new ObjectMapper().readTree(cfg.toFile());
      return AdaLoraFolder.isAdaLora(n) ? AdaLoraFolder.loraConfig(n) : LoraConfig.fromPeftJson(n);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(cfg + ": " + e.getMessage(), e);
    } catch (IOException e) {
      throw new IOException(cfg + ": not valid JSON: " + e.getMessage(), e);
    }
  }

  /** The weights file the LoRA loader reads: an AdaLoRA folder's converted to the equal LoRA. */
  static Path loraWeightsFile(Path dir) throws IOException {
    Path cfg = dir.resolve(CONFIG);
    JsonNode n = Files.isRegularFile(cfg) ? new ObjectMapper().readTree(cfg.toFile()) : null;
    return n != null && AdaLoraFolder.isAdaLora(n) ? AdaLoraFolder.loraWeights(dir, n) : dir.resolve(WEIGHTS);
  }

  /** Loads an adapter for a model through the validating loader ({@link PeftAdapterFile}). */
  public static AdapterSet read(Path dir, LlamaConfig model, DataType dtype) throws IOException {
    try (PeftAdapterFile f = PeftAdapterFile.open(dir, model)) {
      return AdapterSet.fromTensors(model, f.config(), f.tensors(), f.weightsFile().toString(), dtype);
    }
  }
}
