package ai.lathe.jobs;

import ai.lathe.model.LlamaWeights;
import ai.lathe.model.io.HfCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The frozen base model, loaded once per executor JVM from any Hadoop path (copied to local disk
 * first when remote) and shared read-only by the JVM's tasks. Only adapters travel.
 */
public final class ExecutorModels {
  private static final ConcurrentHashMap<String, LlamaWeights> MODELS = new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<String, AtomicLong> LOADS = new ConcurrentHashMap<>();

  private ExecutorModels() {}

  /** Loads of this model in this JVM so far (1 once cached). */
  public static long loads(String path) {
    return loads(path, "none");
  }

  /** Loads of this model held as quant in this JVM so far. */
  public static long loads(String path, String quant) {
    AtomicLong n = LOADS.get(path + "|" + quant);
    return n == null ? 0 : n.get();
  }

  public static LlamaWeights get(String path) {
    return get(path, "none");
  }

  /**
   * As {@link #get(String, String)}, on this JVM's engine: the GPU checked (and described in the log)
   * once, then the row kernels the setting engine.kernels names (auto: by this JVM's backend).
   */
  public static LlamaWeights get(String path, String quant, String kernels) {
    ai.lathe.model.nn.Gpu.checkOnce();
    ai.lathe.model.nn.Kernels.apply(kernels);
    return get(path, quant);
  }

  /** The model held as quant: none, nf4 or nf4-dq (NF4 with double quantisation); only that copy stays. */
  public static LlamaWeights get(String path, String quant) {
    return MODELS.computeIfAbsent(path + "|" + quant, key -> {
      try {
        LOADS.computeIfAbsent(key, k -> new AtomicLong()).incrementAndGet();
        // projections quantised as they are read: one dense projection alive at a time
        return HfCheckpoint.load(localCopy(path), DataType.FLOAT, ai.lathe.model.nn.QuantMode.of(quant).base(),
            ai.lathe.model.nn.QuantMode.of(quant).doubleQuant());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }

  /**
   * ‖W_j‖² per row of every projection as the engine will hold it (NF4 round trip when quant says
   * so), read one module at a time: DoRA's initial magnitudes, without loading the model.
   */
  public static ai.lathe.model.adapter.AdapterSet.RowNorms rowNorms(String path, String quant) throws IOException {
    Path dir = localCopy(path);
    return (layer, module) -> {
      try (HfCheckpoint ck = HfCheckpoint.open(dir)) {
        int[] s = ck.config().moduleShape(module);
        String key = ai.lathe.model.LlamaWeights.moduleKey(layer, module);
        org.nd4j.linalg.api.ndarray.INDArray w = org.nd4j.linalg.factory.Nd4j.create(ck.readWeight(key, s[0], s[1]),
            new long[] {s[0], s[1]}, 'c');
        ai.lathe.model.nn.FrozenLinear f = quant.equals("none") || ck.isQuantized(key)
            ? new ai.lathe.model.nn.DenseLinear(w) : ai.lathe.model.nn.Nf4Linear.quantize(w, quant.equals("nf4-dq"),
                DataType.FLOAT);
        return f.rowSquaredNorms();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    };
  }

  /** The configs' quantize (none | nf4) and double_quant keys as one word: none, nf4 or nf4-dq. */
  public static String quantOf(ai.lathe.model.Config c) {
    return ai.lathe.model.nn.QuantMode.fromConfig(c).word;
  }

  /** A local folder with the model: the path itself if local, else a copy under java.io.tmpdir. */
  static Path localCopy(String path) throws IOException {
    org.apache.hadoop.fs.Path hp = new org.apache.hadoop.fs.Path(path);
    String scheme = hp.toUri().getScheme();
    if (scheme == null || scheme.equals("file")) {
      return Path.of(hp.toUri().getPath());
    }
    FileSystem fs = hp.getFileSystem(new Configuration());
    Path root = Path.of(System.getProperty("java.io.tmpdir"), "lathe-models");
    Path dst = root.resolve(Integer.toHexString(path.hashCode()) + "-" + hp.getName());
    if (!Files.exists(dst.resolve(".complete"))) {
      Files.createDirectories(root);
      Path tmp = Files.createTempDirectory(root, "copy");
      fs.copyToLocalFile(false, hp, new org.apache.hadoop.fs.Path(tmp.toUri()), true);
      Path copied = tmp.resolve(hp.getName());
      Files.writeString(copied.resolve(".complete"), "");
      try {
        Files.move(copied, dst);
      } catch (java.nio.file.FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
        // another task of this JVM finished first
      }
    }
    return dst;
  }

  /**
   * A path as executors must see it: a relative local path is made absolute on the driver
   * (executor JVMs run in their Workers' folders); URIs (hdfs://, s3a://, file:) stay as given.
   */
  static String forExecutors(String p) {
    if (p == null || p.matches("^[A-Za-z][A-Za-z0-9+.-]*:.*")) {
      return p;
    }
    return java.nio.file.Path.of(p).toAbsolutePath().normalize().toString();
  }
}
