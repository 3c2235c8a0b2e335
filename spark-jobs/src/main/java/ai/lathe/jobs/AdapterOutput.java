package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.Version;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.prep.HadoopIo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/**
 * A training job's result folder: the PEFT adapter, lathe-run.json (config, data fingerprint,
 * code version, metrics), metrics.jsonl and plots, built locally and committed to any Hadoop
 * path with one rename.
 */
final class AdapterOutput {
  private AdapterOutput() {}

  /** lathe-run.json's common part. */
  static ObjectNode runInfo(String job, Config c, String data, JsonNode manifest, List<ObjectNode> metrics) {
    ObjectMapper om = new ObjectMapper();
    ObjectNode run = om.createObjectNode();
    run.put("job", job);
    run.put("code_version", Version.get());
    run.set("config", c.root());
    ObjectNode d = run.putObject("data");
    d.put("path", data);
    d.put("manifest_fingerprint", manifest.path("input_fingerprint").asText());
    d.put("tokenizer_sha256", manifest.path("tokenizer_sha256").asText());
    d.set("counts", manifest.path("counts"));
    if (manifest.has("reference")) {
      d.set("reference", manifest.get("reference"));
    }
    ObjectNode m = run.putObject("metrics");
    m.set("rounds", om.valueToTree(metrics));
    return run;
  }

  /**
   * The rounds' metrics of an output already written by a run this one resumes after its last
   * round, or null when there is none (then the caller writes it).
   */
  static List<ObjectNode> existing(String output, Configuration hconf) throws java.io.IOException {
    String p = output + "/metrics.jsonl";
    if (!HadoopIo.exists(p, hconf)) {
      return null;
    }
    List<ObjectNode> out = new ArrayList<>();
    ObjectMapper om = new ObjectMapper();
    for (String line : HadoopIo.readString(p, hconf).split("\n")) {
      if (!line.isBlank()) {
        out.add((ObjectNode) om.readTree(line));
      }
    }
    return out;
  }

  /** The (step, metric) points of the rounds that have it. */
  static List<double[]> series(List<ObjectNode> metrics, String key) {
    List<double[]> out = new ArrayList<>();
    for (ObjectNode l : metrics) {
      if (l.has(key) && !l.get(key).isNull()) {
        out.add(new double[] {l.get("step").asDouble(), l.get(key).asDouble()});
      }
    }
    return out;
  }

  /**
   * Writes the folder and commits it to output. plots: file name → title and series keys
   * (metric names in the rounds' lines).
   */
  static void write(String output, String model, AdapterSet adapter, ObjectNode run, List<ObjectNode> metrics,
      Map<String, List<String>> plots, Configuration hconf) throws Exception {
    write(output, (dir, extra) -> PeftAdapter.write(dir, adapter, model, run, extra), metrics, plots, hconf);
  }

  /** Writes a folder's own files into dir (committed there atomically), extra text files included. */
  interface Folder {
    void write(Path dir, Map<String, String> extra) throws java.io.IOException;
  }

  /** As above for any folder (train.mode full: a Hugging Face model folder). */
  static void write(String output, Folder folder, List<ObjectNode> metrics, Map<String, List<String>> plots,
      Configuration hconf) throws Exception {
    StringBuilder lines = new StringBuilder();
    for (ObjectNode l : metrics) {
      lines.append(l).append('\n');
    }
    Path local = Files.createTempDirectory("lathe-adapter");
    try {
      Path dir = local.resolve("adapter");
      folder.write(dir, Map.of("metrics.jsonl", lines.toString()));
      for (Map.Entry<String, List<String>> p : plots.entrySet()) {
        Map<String, List<double[]>> series = new LinkedHashMap<>();
        for (String key : p.getValue().subList(1, p.getValue().size())) {
          series.put(key.replace('_', ' '), series(metrics, key));
        }
        LossPlot.write(dir.resolve(p.getKey()), p.getValue().get(0) + " " + output, series);
      }
      org.apache.hadoop.fs.Path target = new org.apache.hadoop.fs.Path(output);
      var fs = target.getFileSystem(hconf);
      if (target.getParent() != null) {
        fs.mkdirs(target.getParent());
      }
      String tmp = HadoopIo.tempSibling(output);
      fs.copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(dir.toUri()), new org.apache.hadoop.fs.Path(tmp));
      HadoopIo.commit(tmp, output, hconf);
    } finally {
      ai.lathe.model.io.AtomicDir.deleteTree(local);
    }
  }
}
