package ai.lathe.merge;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.cli.Args;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * {@code lathe cost}: storage of N LoRA adapters against N fully fine-tuned copies of a model,
 * from the model's actual parameter counts and the stored dtypes.
 */
public final class CostCommand {
  public static final String USAGE = """
      usage: lathe cost (--model DIR | --preset llama2-7b|llama2-13b|llama2-70b|llama3-8b|llama3-70b)
                        [--adapters 10] [--rank 16] [--targets q_proj,k_proj,v_proj,o_proj]
                        [--model-dtype BF16] [--adapter-dtype F32]
        Prints the bytes of N adapters versus N full fine-tunes; last line is JSON.""";

  private CostCommand() {}

  public static LlamaConfig preset(String name) {
    return switch (name) {
      case "llama2-7b" -> new LlamaConfig("llama", 32000, 4096, 32, 32, 32, 11008, 1e-5, 10000, false, 4096, 1, 2);
      case "llama2-13b" -> new LlamaConfig("llama", 32000, 5120, 40, 40, 40, 13824, 1e-5, 10000, false, 4096, 1, 2);
      case "llama2-70b" -> new LlamaConfig("llama", 32000, 8192, 80, 64, 8, 28672, 1e-5, 10000, false, 4096, 1, 2);
      case "llama3-8b" -> new LlamaConfig("llama", 128256, 4096, 32, 32, 8, 14336, 1e-5, 500000, false, 8192, 1, 2);
      case "llama3-70b" -> new LlamaConfig("llama", 128256, 8192, 80, 64, 8, 28672, 1e-5, 500000, false, 8192, 1, 2);
      default -> throw new Args.UsageException("cost: unknown preset '" + name + "'");
    };
  }

  static int bytesOf(String dtype) {
    return switch (dtype) {
      case "F32" -> 4;
      case "BF16", "F16" -> 2;
      default -> throw new Args.UsageException("cost: dtype must be F32, BF16 or F16");
    };
  }

  public static int run(String[] argv) throws Exception {
    Args a = new Args("cost", argv, Set.of()).allow(Set.of("model", "preset", "adapters", "rank", "targets",
        "model-dtype", "adapter-dtype"));
    LlamaConfig c = a.has("model") ? LlamaConfig.read(Path.of(a.need("model")).resolve("config.json"))
        : preset(a.str("preset", "llama2-70b"));
    int n = a.integer("adapters", 10);
    int r = a.integer("rank", 16);
    List<String> targets = Arrays.asList(a.str("targets", "q_proj,k_proj,v_proj,o_proj").split(","));
    long adapterParams = 0;
    for (String m : targets) {
      if (!LlamaWeights.MODULES.contains(m)) {
        throw new Args.UsageException("cost: unknown module " + m);
      }
      int[] s = c.moduleShape(m);
      adapterParams += (long) c.numLayers() * r * (s[0] + s[1]);
    }
    long modelBytes = c.parameterCount() * bytesOf(a.str("model-dtype", "BF16"));
    long adapterBytes = adapterParams * bytesOf(a.str("adapter-dtype", "F32"));
    System.out.printf("model: %,d parameters (%s), %.2f GB each%n", c.parameterCount(), a.str("model-dtype", "BF16"),
        modelBytes / 1e9);
    System.out.printf("adapter: rank %d on %s, %,d parameters (%s), %.1f MB each%n", r, targets, adapterParams,
        a.str("adapter-dtype", "F32"), adapterBytes / 1e6);
    System.out.printf("%d full fine-tunes: %.1f GB; base + %d adapters: %.2f GB (%.0fx less)%n", n, n * modelBytes / 1e9,
        n, (modelBytes + n * adapterBytes) / 1e9, (double) n * modelBytes / (modelBytes + (double) n * adapterBytes));
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.put("model_parameters", c.parameterCount());
    o.put("adapter_parameters", adapterParams);
    o.put("full_finetunes_bytes", n * modelBytes);
    o.put("base_plus_adapters_bytes", modelBytes + n * adapterBytes);
    o.put("adapters_bytes", n * adapterBytes);
    System.out.println(o);
    return 0;
  }
}
