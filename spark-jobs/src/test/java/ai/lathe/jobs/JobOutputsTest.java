package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.cli.Main;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.prep.HadoopStore;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Every Spark job (and merge) refuses, before Spark starts and with exit 2, an output that equals,
 * contains or lies inside one of its inputs; the bytes on disk stay as they were.
 */
class JobOutputsTest {
  @TempDir
  Path tmp;
  Path model;
  Path data;
  Path adapter;
  Path ref;

  static String treeHash(Path dir) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted().toList()) {
        md.update(dir.relativize(p).toString().getBytes(StandardCharsets.UTF_8));
        md.update(Files.isDirectory(p) ? new byte[] {1} : Files.readAllBytes(p));
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  @BeforeEach
  void inputs() throws Exception {
    Path root = tmp.toRealPath();
    model = Files.createDirectories(root.resolve("in/model"));
    Files.writeString(model.resolve("config.json"), "{}");
    Files.write(model.resolve("model.safetensors"), new byte[] {1, 2, 3});
    data = Files.createDirectories(root.resolve("in/prepared"));
    Files.writeString(data.resolve("_SUCCESS"), "");
    Files.writeString(data.resolve("manifest.json"), "{}");
    LlamaConfig c = new LlamaConfig("llama", 64, 16, 1, 2, 1, 24, 1e-5, 10000, false, 64, 1, 2);
    adapter = root.resolve("in/sft");
    ref = root.resolve("in/ref");
    for (Path p : List.of(adapter, ref)) {
      PeftAdapter.write(p, AdapterSet.init(c, LoraConfig.of(2, 4, List.of("q_proj", "v_proj")), 1, DataType.FLOAT),
          "m", null);
    }
  }

  /** A job through its command-line entry (Lathe's dispatch): exit code and stderr. */
  static Object[] lathe(String... argv) {
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      return new Object[] {Main.dispatch(argv, Lathe.commands()), buf.toString(StandardCharsets.UTF_8)};
    } finally {
      System.setErr(err);
    }
  }

  void assertRefused(Object[] r, Path output, Path input) throws Exception {
    String err = (String) r[1];
    assertEquals(2, r[0], err);
    assertEquals(1, err.lines().count(), err);
    assertTrue(err.contains(output.toString()) && err.contains(input.toString()), err);
  }

  static String[] sets(String job, String... kv) {
    List<String> a = new ArrayList<>(List.of(job));
    for (String s : kv) {
      a.add("--set");
      a.add(s);
    }
    return a.toArray(new String[0]);
  }

  @Test
  void trainingJobsRefuseOutputsOverTheirInputs() throws Exception {
    String before = treeHash(tmp);
    Path in = model.getParent();
    assertRefused(lathe(sets("sft", "model=" + model, "data=" + data, "output=" + model)), model, model);
    assertRefused(lathe(sets("sft", "model=" + model, "data=" + data, "output=" + in)), in, model);
    assertRefused(lathe(sets("sft", "model=" + model, "data=" + data, "output=" + data.resolve("adapter"))),
        data.resolve("adapter"), data);
    assertRefused(lathe(sets("dpo", "model=" + model, "data=" + data, "adapter=" + adapter, "output=" + adapter)),
        adapter, adapter);
    assertRefused(lathe(sets("kto", "model=" + model, "data=" + data, "reference.adapter=" + ref,
        "output=" + ref)), ref, ref);
    assertEquals(before, treeHash(tmp));
  }

  @Test
  void refLogpsMayRewriteItsDataInPlaceButNothingElse() throws Exception {
    Configuration conf = new Configuration();
    HadoopStore.check(JobOutputs.refLogps(Config.load(null, List.of("model=" + model, "data=" + data,
        "output=" + data))), conf);
    String before = treeHash(tmp);
    assertRefused(lathe(sets("ref-logps", "model=" + model, "data=" + data, "output=" + data.getParent())),
        data.getParent(), model);
    assertRefused(lathe(sets("ref-logps", "model=" + model, "data=" + data, "reference.adapter=" + ref,
        "output=" + ref)), ref, ref);
    assertEquals(before, treeHash(tmp));
  }

  @Test
  void mergesRefuseOutputsOverTheBaseOrTheAdapters() throws Exception {
    String before = treeHash(tmp);
    String adapters = "adapters=[{path: " + adapter + "}, {path: " + ref + "}]";
    for (String job : List.of("merge", "merge-job")) {
      assertRefused(lathe(sets(job, "base_model=" + model, adapters, "output.kind=model", "output.path=" + model)),
          model, model);
      assertRefused(lathe(sets(job, "base_model=" + model, adapters, "output.path=" + adapter)), adapter, adapter);
      assertRefused(lathe(sets(job, "base_model=" + model, adapters, "output.path=" + model.getParent())),
          model.getParent(), model);
    }
    assertEquals(before, treeHash(tmp));
  }
}
