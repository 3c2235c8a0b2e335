package ai.lathe.model.nn;

import java.util.Locale;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Which implementation the engine's element-wise work runs (RMSNorm, rotary embedding, attention
 * softmax, SwiGLU, NF4 dequantisation, 16-bit widening, row gathers, the LM-head loss, dropout,
 * AdamW): {@link #JAVA} loops over host memory (Vector API on the CPU), or {@link #ND4J} ops on the
 * arrays themselves, which stay on the device under ND4J's CUDA backend.
 * The choice follows the backend (CUDA: ND4J ops) unless the setting {@code engine.kernels} or the
 * system property {@code lathe.kernels} forces one. The kernels' entry points read it, so callers
 * (LlamaModel, the trainers) are the same for both.
 */
public enum Kernels {
  JAVA,
  ND4J;

  private static volatile Kernels current;

  /** The kernels in use: forced, else by the backend. */
  public static Kernels current() {
    Kernels k = current;
    if (k == null) {
      String p = System.getProperty("lathe.kernels");
      k = p != null && !p.isBlank() ? parse(p, "system property lathe.kernels") : forBackend(cudaBackend());
      current = supported(k, "system property lathe.kernels");
    }
    return k;
  }

  /** Forces the kernels (the setting engine.kernels); null returns to the backend's choice. */
  public static void use(Kernels k) {
    current = k == null ? null : supported(k, "engine.kernels");
  }

  /**
   * The JVM kernels read and write host memory and their blocked attention calls the CPU's
   * OpenBLAS directly, which a CUDA build does not ship: on the CUDA backend only nd4j runs.
   */
  static Kernels supported(Kernels k, String where) {
    if (k == JAVA && cudaBackend()) {
      throw new IllegalArgumentException(where + ": java kernels need ND4J's CPU backend; this JVM runs ND4J's "
          + "CUDA backend (use engine.kernels auto or nd4j)");
    }
    return k;
  }

  static boolean nd4j() {
    return current() == ND4J;
  }

  /** CUDA backends run ND4J ops (no host copies); the CPU runs the Java kernels (faster there). */
  public static Kernels forBackend(boolean cuda) {
    return cuda ? ND4J : JAVA;
  }

  public static boolean cudaBackend() {
    return Nd4j.getBackend().getClass().getName().contains(".jcublas.");
  }

  /** The setting engine.kernels (auto | java | nd4j), checked on the driver; applied where the engine runs. */
  public static String setting(ai.lathe.model.Config c) {
    String v = c.str("engine.kernels", "auto").trim().toLowerCase(Locale.ROOT);
    if (!v.equals("auto") && !v.equals("java") && !v.equals("nd4j")) {
      throw new IllegalArgumentException(c.source() + ": engine.kernels is '" + v + "'; use auto, java or nd4j");
    }
    return v;
  }

  /** Uses the kernels a setting names in this JVM; auto decides by this JVM's backend. */
  public static void apply(String setting) {
    use(setting == null || setting.equals("auto") ? null : parse(setting, "engine.kernels"));
  }

  /** "java" | "nd4j" | "auto" (by backend); anything else is an error naming where it came from. */
  public static Kernels parse(String v, String where) {
    return switch (v.trim().toLowerCase(Locale.ROOT)) {
      case "java" -> JAVA;
      case "nd4j" -> ND4J;
      case "auto" -> forBackend(cudaBackend());
      default -> throw new IllegalArgumentException(where + ": '" + v + "' is not one of java, nd4j, auto");
    };
  }
}
