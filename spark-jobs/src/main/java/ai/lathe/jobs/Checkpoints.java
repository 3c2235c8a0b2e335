package ai.lathe.jobs;

import ai.lathe.model.io.Safetensors;
import ai.lathe.prep.HadoopIo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
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
  public record Loaded(int round, AdapterState state, float[][] outerMomentum) {}

  private Checkpoints() {}

  public static void write(String dir, int round, AdapterState s, float[][] outerMomentum, String fingerprint,
      Configuration conf) throws IOException {
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

  /** The newest complete checkpoint, or null. */
  public static Loaded latest(String dir, String[] names, String fingerprint, Configuration conf) throws IOException {
    org.apache.hadoop.fs.Path d = new org.apache.hadoop.fs.Path(dir);
    FileSystem fs = d.getFileSystem(conf);
    if (!fs.exists(d)) {
      return null;
    }
    String best = null;
    for (FileStatus f : fs.listStatus(d)) {
      String n = f.getPath().getName();
      if (f.isDirectory() && n.matches("round-\\d{6}") && fs.exists(new org.apache.hadoop.fs.Path(f.getPath(), "state.json"))
          && (best == null || n.compareTo(best) > 0)) {
        best = n;
      }
    }
    if (best == null) {
      return null;
    }
    String base = dir + "/" + best;
    JsonNode st = new ObjectMapper().readTree(HadoopIo.readString(base + "/state.json", conf));
    if (!st.path("fingerprint").asText().equals(fingerprint)) {
      throw new IllegalArgumentException(base + ": checkpoint was written with different settings (fingerprint "
          + st.path("fingerprint").asText() + ", now " + fingerprint + "); use another checkpoint_dir or delete it");
    }
    Path local = Files.createTempDirectory("lathe-ckpt-read");
    try {
      fs.copyToLocalFile(false, new org.apache.hadoop.fs.Path(base), new org.apache.hadoop.fs.Path(local.toUri()), true);
      Path l = local.resolve(best);
      float[][] p = read(l.resolve("params.safetensors"), names, "");
      float[][] m = null;
      float[][] v = null;
      if (Files.exists(l.resolve("optimizer.safetensors"))) {
        m = read(l.resolve("optimizer.safetensors"), names, ".exp_avg");
        v = read(l.resolve("optimizer.safetensors"), names, ".exp_avg_sq");
      }
      float[][] outer = Files.exists(l.resolve("outer.safetensors"))
          ? read(l.resolve("outer.safetensors"), names, ".momentum") : null;
      return new Loaded(st.path("round").asInt(), new AdapterState(names, p, m, v, st.path("step").asLong()), outer);
    } finally {
      ai.lathe.model.io.AtomicDir.deleteTree(local);
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
