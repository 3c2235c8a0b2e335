package ai.lathe.model.nn;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The GPUs a CUDA-backend JVM will run on, described in the log and checked before any work: ND4J
 * 1.0.0-M2.1's CUDA 11.6 binaries hold machine code for a fixed list of compute capabilities and
 * no PTX, so on any other GPU (Hopper, sm_90, and later) the first kernel would fail. The devices
 * are read with nvidia-smi before ND4J loads (ND4J's own environment report when it is missing).
 */
public final class Gpu {
  /** Compute capabilities with SASS in nd4j-cuda-11.6:1.0.0-M2.1 (V100 7.0, T4 7.5, A100 8.0, A10/L4-class 8.6). */
  public static final List<String> SUPPORTED = List.of("3.7", "5.0", "5.2", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6");

  /** One device: index, name, compute capability "major.minor", total memory in MiB. */
  public record Device(int index, String name, String computeCapability, long memoryMiB) {
    public Device {
      if (name == null || computeCapability == null || !computeCapability.matches("\\d+\\.\\d+")) {
        throw new IllegalArgumentException("GPU " + index + ": no compute capability in '" + computeCapability + "'");
      }
    }

    @Override
    public String toString() {
      return String.format("GPU %d: %s, compute capability %s, %d MiB", index, name, computeCapability, memoryMiB);
    }
  }

  private static boolean checked;

  private Gpu() {}

  /** Whether this JVM has ND4J's CUDA backend on its class path (not loaded by asking). */
  public static boolean cudaBackendPresent() {
    try {
      Class.forName("org.nd4j.linalg.jcublas.JCublasBackend", false, Gpu.class.getClassLoader());
      return true;
    } catch (ClassNotFoundException e) {
      return false;
    }
  }

  /** On the CUDA backend, once per JVM: logs every device, fails on one the binaries cannot run. */
  public static synchronized void checkOnce() {
    if (checked || !cudaBackendPresent()) {
      return;
    }
    List<Device> devices = devices();
    devices.forEach(d -> System.out.println("lathe: " + d));
    String problem = unsupported(devices);
    if (problem != null) {
      throw new IllegalStateException(problem);
    }
    // the cuda build also carries the CPU backend (for a driver without a GPU): on a GPU executor a
    // silent fallback to it would train on the CPU, so it is an error here
    if (!Kernels.cudaBackend()) {
      throw new IllegalStateException(devices.get(0) + " is supported, but ND4J loaded "
          + org.nd4j.linalg.factory.Nd4j.getBackend().getClass().getSimpleName() + " instead of its CUDA backend "
          + "(CUDA failed to initialise: see ND4J's messages in the executor log)");
    }
    checked = true;
  }

  /** The error naming each device the binaries lack, or null when every one is supported. */
  public static String unsupported(List<Device> devices) {
    if (devices.isEmpty()) {
      return "the job jar was built with ND4J's CUDA backend (-Pcuda) but this executor sees no GPU; request "
          + "spark.executor.resource.gpu.amount=1, or use the CPU build";
    }
    List<String> bad = new ArrayList<>();
    for (Device d : devices) {
      if (!SUPPORTED.contains(d.computeCapability())) {
        bad.add(d.toString());
      }
    }
    return bad.isEmpty() ? null : String.join("; ", bad) + ": ND4J 1.0.0-M2.1's CUDA 11.6 binaries have no code for "
        + "this compute capability (they support " + String.join(", ", SUPPORTED) + ": V100, T4, A100, A10, L4-class "
        + "GPUs; not Hopper sm_90 or later); run on a supported GPU or use the CPU build";
  }

  /** Parses {@code nvidia-smi --query-gpu=index,name,compute_cap,memory.total --format=csv,noheader,nounits}. */
  public static List<Device> parseSmi(List<String> lines) {
    List<Device> out = new ArrayList<>();
    for (String line : lines) {
      if (line.isBlank()) {
        continue;
      }
      String[] f = line.split(",");
      if (f.length < 4) {
        throw new IllegalArgumentException("nvidia-smi: unexpected line '" + line + "'");
      }
      out.add(new Device(Integer.parseInt(f[0].trim()), f[1].trim(), f[2].trim(), Long.parseLong(f[3].trim())));
    }
    return out;
  }

  static List<Device> devices() {
    try {
      Process p = new ProcessBuilder("nvidia-smi", "--query-gpu=index,name,compute_cap,memory.total",
          "--format=csv,noheader,nounits").redirectErrorStream(true).start();
      String text;
      try (InputStream in = p.getInputStream()) {
        text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
      if (p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0) {
        return parseSmi(text.lines().toList());
      }
    } catch (IOException e) {
      // no nvidia-smi: ask ND4J below
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return fromNd4j();
  }

  /** ND4J's environment report (loads the backend). */
  @SuppressWarnings("unchecked")
  static List<Device> fromNd4j() {
    var env = org.nd4j.linalg.factory.Nd4j.getExecutioner().getEnvironmentInformation();
    List<Device> out = new ArrayList<>();
    Object list = env.get("cuda.devicesInformation");
    if (list instanceof List<?> l) {
      for (Object o : l) {
        Map<String, Object> m = (Map<String, Object>) o;
        out.add(new Device(out.size(), String.valueOf(m.get("cuda.deviceName")), m.get("cuda.deviceMajor") + "."
            + m.get("cuda.deviceMinor"), ((Number) m.getOrDefault("cuda.totalMemory", 0L)).longValue() >> 20));
      }
    }
    return out;
  }
}
