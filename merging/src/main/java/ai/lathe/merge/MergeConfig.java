package ai.lathe.merge;

import ai.lathe.model.Config;
import ai.lathe.model.nn.QuantMode;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/** A mergekit-like merge configuration (see conf/merge.yaml), validated when read. */
public record MergeConfig(MergeMethod method, String baseModel, MergeMethod.Params params, double density,
    List<Input> adapters, String outputKind, int outputRank, String outputPath, String outputDtype,
    String baseQuantize) implements java.io.Serializable {

  /** One adapter to merge, with its weight and optional density override. */
  public record Input(String path, double weight, double density) implements java.io.Serializable {}

  public static MergeConfig from(Config c) {
    MergeMethod m = MergeMethod.of(c.str("method", "ties"));
    double density = c.number("parameters.density", 1.0);
    checkDensity(density, c.source() + ": parameters.density");
    MergeMethod.Params p = new MergeMethod.Params(c.bool("parameters.normalize", m.normalizeByDefault),
        c.str("parameters.sign", "total"), c.number("parameters.lambda", 1.0), c.integer("parameters.seed", 0));
    JsonNode list = c.node("adapters");
    if (list == null || !list.isArray() || list.isEmpty()) {
      throw new IllegalArgumentException(c.source() + ": 'adapters' must list at least one adapter");
    }
    List<Input> in = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      JsonNode a = list.get(i);
      String path = a.isTextual() ? a.asText() : a.path("path").asText("");
      if (path.isBlank()) {
        throw new IllegalArgumentException(c.source() + ": adapters[" + i + "] has no path");
      }
      double d = a.path("density").asDouble(density);
      checkDensity(d, c.source() + ": adapters[" + i + "].density");
      in.add(new Input(path, a.path("weight").asDouble(1.0), d));
    }
    String kind = c.str("output.kind", "adapter");
    if (!kind.equals("adapter") && !kind.equals("model")) {
      throw new IllegalArgumentException(c.source() + ": output.kind must be adapter or model, got " + kind);
    }
    // quantize/double_quant (old spellings base_quantize/base_double_quant are renamed by validate)
    String bq = QuantMode.fromConfig(c).word;
    return new MergeConfig(m, c.need("base_model"), p, density, in, kind, c.integer("output.rank", 16),
        c.need("output.path"), c.str("output.dtype", "F32"),
        bq);
  }

  /** The merge's output and inputs (base model, every adapter) for the output checks. */
  public static ai.lathe.model.io.OutputGuard.Spec outputs(MergeConfig mc, Config c, String command) {
    List<ai.lathe.model.io.OutputGuard.Input> in = new ArrayList<>();
    in.add(ai.lathe.model.io.OutputGuard.Input.of("base model", mc.baseModel()));
    for (int i = 0; i < mc.adapters().size(); i++) {
      in.add(ai.lathe.model.io.OutputGuard.Input.of("adapters[" + i + "]", mc.adapters().get(i).path()));
    }
    return new ai.lathe.model.io.OutputGuard.Spec(command, mc.outputPath(), mc.outputKind().equals("adapter")
        ? ai.lathe.model.io.OutputGuard.Kind.MERGED_ADAPTER : ai.lathe.model.io.OutputGuard.Kind.MERGED_MODEL,
        c.bool("overwrite", false), in);
  }

  static void checkDensity(double d, String where) {
    if (!(d > 0 && d <= 1)) {
      throw new IllegalArgumentException(where + " must be in (0, 1], got " + d);
    }
  }
}
