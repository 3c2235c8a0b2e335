package ai.lathe.jobs;

import ai.lathe.model.io.Safetensors;
import ai.lathe.prep.HadoopIo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;

/**
 * Training checkpoints on any Hadoop file system: {@code round-NNNNNN/} holding state.json
 * (round, step, settings fingerprint), params.safetensors (the adapter tensors under PEFT names),
 * optimizer.safetensors (AdamW moments) and outer.safetensors (DiLoCo momentum), each folder
 * committed by one rename, so a folder that exists is complete.
 */
public final class Checkpoints {
  /** A checkpoint read back. */
  public record Loaded(int round, AdapterState state, float[][] outerMomentum, List<ObjectNode> metrics) {
    /** The metrics lines of the rounds up to this checkpoint (empty for checkpoints written without them). */
    public List<ObjectNode> metricsOrEmpty() {
      return metrics == null ? List.of() : metrics;
    }
  }

  private Checkpoints() {}

  public static void write(String dir, int round, AdapterState s, float[][] outerMomentum, String fingerprint,
      Configuration conf) throws IOException {
    write(dir, round, s, outerMomentum, fingerprint, null, conf);
  }

  /** As above, with the metrics lines of every round so far (a resumed run's metrics.jsonl keeps them). */
  public static void write(String dir, int round, AdapterState s, float[][] outerMomentum, String fingerprint,
      List<ObjectNode> metrics, Configuration conf) throws IOException {
    String target = dir + String.format("/round-%06d", round);
    Path local = Files.createTempDirectory("lathe-ckpt");
    try {
      Safetensors.write(local.resolve("params.safetensors"), tensors(s.names(), s.params(), ""), "F32", Map.of());
      if (s.m() != null) {
        Map<String, Safetensors.Tensor> t = tensors(s.names(), s.m(), ".exp_avg");
        t.putAll(tensors(s.names(), s.v(), ".exp_avg_sq"));
        Safetensors.write(local.resolve("optimizer.safetensors"), t, "F32", Map.of());
      }
      if (outerMomentum != null) {
        Safetensors.write(local.resolve("outer.safetensors"), tensors(s.names(), outerMomentum, ".momentum"), "F32",
            Map.of());
      }
      ObjectNode st = new ObjectMapper().createObjectNode().put("round", round).put("step", s.step())
          .put("fingerprint", fingerprint);
      Files.writeString(local.resolve("state.json"), st.toString());
      if (metrics != null) {
        StringBuilder lines = new StringBuilder();
        for (ObjectNode l : metrics) {
          lines.append(l).append('\n');
        }
        Files.writeString(local.resolve("metrics.jsonl"), lines.toString());
      }
      FileSystem fs = new org.apache.hadoop.fs.Path(dir).getFileSystem(conf);
      fs.mkdirs(new org.apache.hadoop.fs.Path(dir));
      String tmp = HadoopIo.tempSibling(target);
      fs.copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(local.toUri()), new org.apache.hadoop.fs.Path(tmp));
      HadoopIo.commit(tmp, target, conf);
    } finally {
      ai.lathe.model.io.AtomicDir.deleteTree(local);
    }
  }

  private static Map<String, Safetensors.Tensor> tensors(String[] names, float[][] data, String suffix) {
    Map<String, Safetensors.Tensor> t = new LinkedHashMap<>();
    for (int i = 0; i < names.length; i++) {
      t.put(names[i] + suffix, new Safetensors.Tensor(new long[] {data[i].length}, data[i]));
    }
    return t;
  }

  /** The newest complete checkpoint, or null (the tensors' sizes are not checked). */
  public static Loaded latest(String dir, String[] names, String fingerprint, Configuration conf) throws IOException {
    return latest(dir, names, null, fingerprint, conf);
  }

  /**
   * The newest intact checkpoint, or null. A checkpoint that does not read back whole (missing or
   * unparseable state.json, truncated or missing tensors, sizes other than sizes[i], non-finite
   * values) is skipped with a warning naming it, and the next older one is used. Leftovers of
   * killed checkpoint writes (.round-*.tmp-*, .old-*) are removed first: the caller holds the
   * output's lock, so no other run writes here. A checkpoint of other settings is an error.
   */
  public static Loaded latest(String dir, String[] names, int[] sizes, String fingerprint, Configuration conf)
      throws IOException {
    org.apache.hadoop.fs.Path d = new org.apache.hadoop.fs.Path(dir);
    FileSystem fs = d.getFileSystem(conf);
    if (!fs.exists(d)) {
      return null;
    }
    List<String> rounds = new ArrayList<>();
    for (FileStatus f : fs.listStatus(d)) {
      String n = f.getPath().getName();
      if (n.matches("\\.round-\\d{6}\\.(tmp|old)-.*")) {
        System.err.printf("checkpoints: removing %s (left by an interrupted checkpoint write)%n", f.getPath());
        fs.delete(f.getPath(), true);
      } else if (f.isDirectory() && n.matches("round-\\d{6}")) {
        rounds.add(n);
      }
    }
    rounds.sort(java.util.Comparator.reverseOrder());
    for (String best : rounds) {
      String base = fs.makeQualified(new org.apache.hadoop.fs.Path(d, best)).toString();
      JsonNode st;
      try {
        st = new ObjectMapper().readTree(HadoopIo.readString(base + "/state.json", conf));
        if (st == null || !st.path("round").isInt() || !st.path("step").canConvertToLong()
            || !st.path("fingerprint").isTextual()) {
          throw new IOException("state.json lacks round, step or fingerprint");
        }
      } catch (IOException | RuntimeException e) {
        torn(base + "/state.json", e);
        continue;
      }
      if (!st.path("fingerprint").asText().equals(fingerprint)) {
        throw new IllegalArgumentException(base + ": checkpoint was written with different settings (fingerprint "
            + st.path("fingerprint").asText() + ", now " + fingerprint + "); use another checkpoint_dir or delete it");
      }
      try {
        return read(fs, base, best, st, names, sizes);
      } catch (TornException e) {
        torn(e.getMessage(), e.getCause());
      }
    }
    return null;
  }

  private static void torn(String where, Throwable cause) {
    System.err.printf("checkpoints: warning: %s is torn (%s); resuming from an older checkpoint%n", where,
        cause.getMessage() == null ? cause.toString() : cause.getMessage().lines().findFirst().orElse(""));
  }

  /** A checkpoint file that does not read back whole; the message is its real path. */
  private static final class TornException extends Exception {
    TornException(String where, Throwable cause) {
      super(where, cause);
    }
  }

  private static Loaded read(FileSystem fs, String base, String name, JsonNode st, String[] names, int[] sizes)
      throws IOException, TornException {
    Path local = Files.createTempDirectory("lathe-ckpt-read");
    try {
      try {
        fs.copyToLocalFile(false, new org.apache.hadoop.fs.Path(base), new org.apache.hadoop.fs.Path(local.toUri()),
            true);
      } catch (IOException e) { // e.g. a checksum that no longer matches a truncated file
        throw new TornException(base, e);
      }
      Path l = local.resolve(name);
      float[][] p = read(l, base, "params.safetensors", names, "", sizes, true);
      float[][] m = read(l, base, "optimizer.safetensors", names, ".exp_avg", sizes, false);
      float[][] v = m == null ? null : read(l, base, "optimizer.safetensors", names, ".exp_avg_sq", sizes, true);
      float[][] outer = read(l, base, "outer.safetensors", names, ".momentum", sizes, false);
      List<ObjectNode> metrics = null;
      if (Files.exists(l.resolve("metrics.jsonl"))) {
        try {
          metrics = new ArrayList<>();
          for (String line : Files.readAllLines(l.resolve("metrics.jsonl"))) {
            if (!line.isBlank()) {
              metrics.add((ObjectNode) new ObjectMapper().readTree(line));
            }
          }
        } catch (IOException | RuntimeException e) {
          throw new TornException(base + "/metrics.jsonl", e);
        }
      }
      return new Loaded(st.path("round").asInt(), new AdapterState(names, p, m, v, st.path("step").asLong()), outer,
          metrics);
    } finally {
      ai.lathe.model.io.AtomicDir.deleteTree(local);
    }
  }

  /** One file's tensors, checked whole (sizes, finite values); null when optional and absent. */
  private static float[][] read(Path dir, String base, String file, String[] names, String suffix, int[] sizes,
      boolean required) throws TornException {
    Path f = dir.resolve(file);
    String where = base + "/" + file;
    if (!Files.exists(f)) {
      if (required) {
        throw new TornException(where, new IOException("missing"));
      }
      return null;
    }
    try {
      float[][] out = read(f, names, suffix);
      for (int i = 0; i < names.length; i++) {
        if (sizes != null && out[i].length != sizes[i]) {
          throw new IOException(names[i] + suffix + " has " + out[i].length + " values, expected " + sizes[i]);
        }
        for (float x : out[i]) {
          if (!Float.isFinite(x)) {
            throw new IOException(names[i] + suffix + " holds a non-finite value (" + x + ")");
          }
        }
      }
      return out;
    } catch (IOException | RuntimeException e) {
      String msg = e.getMessage() == null ? e.toString() : e.getMessage().replace(f.toString(), where);
      throw new TornException(where, new IOException(msg, e));
    }
  }

  private static float[][] read(Path f, String[] names, String suffix) throws IOException {
    float[][] out = new float[names.length][];
    try (Safetensors st = Safetensors.open(f)) {
      for (int i = 0; i < names.length; i++) {
        out[i] = st.readFloats(names[i] + suffix);
      }
    }
    return out;
  }
}
