package ai.lathe.merge;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import ai.lathe.model.config.ConfigReference;
import java.nio.file.Path;
import java.util.Set;

/** {@code lathe merge --config merge.yaml}: merges adapters as the config says (runs locally). */
public final class MergeCommand {
  public static final String USAGE = """
      usage: lathe merge --config conf/merge.yaml [--set key=value ...]
        Merges LoRA adapters on their dense updates (linear, task_arithmetic, ties, dare_linear,
        dare_ties, magnitude_prune) into a rank-r adapter or into the base model's weights.
        Writes lathe-merge.json (inputs with fingerprints, method, parameters, truncation errors).""";

  private MergeCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("merge", argv, Set.of()).allow(Set.of("config", "set"));
    Config c = Config.load(a.has("config") ? a.path("config") : null, a.all("set")).validate(ConfigReference.MERGE);
    MergeConfig mc = MergeConfig.from(c);
    long t0 = System.nanoTime();
    AdapterMerger.Result r;
    try (var lease = ai.lathe.model.io.OutputGuard.acquire(ai.lathe.model.io.LocalStore.INSTANCE,
        MergeConfig.outputs(mc, c, "merge"))) {
      r = AdapterMerger.run(mc, Path.of(mc.baseModel()));
    }
    double worst = r.truncationErrors().values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
    System.out.printf("merge: %s of %d adapters -> %s %s in %.1f s%s%n", mc.method().id, mc.adapters().size(),
        mc.outputKind(), mc.outputPath(), (System.nanoTime() - t0) / 1e9,
        r.truncationErrors().isEmpty() ? "" : String.format(" (rank %d, max relative truncation error %.4f over %d modules)",
            mc.outputRank(), worst, r.truncationErrors().size()));
    return 0;
  }
}
