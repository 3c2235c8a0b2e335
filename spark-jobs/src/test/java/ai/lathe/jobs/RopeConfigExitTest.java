package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model folder whose config.json has a rope setting Lathe does not implement, or a malformed
 * one, is bad input: through the command-line entry (Lathe's dispatch) the command exits 2 with
 * one line naming the config.json and the key, and writes nothing.
 */
class RopeConfigExitTest {
  static final ObjectMapper OM = new ObjectMapper();

  /** A random tiny model in dir/name whose config.json is then changed by edit. */
  static Path modelWith(Path dir, String name, Consumer<ObjectNode> edit) throws Exception {
    Path model = dir.resolve(name);
    ai.lathe.model.RandomLlama.write(model, new LlamaConfig("llama", 32000, 16, 1, 2, 1, 24, 1e-5, 10000, false, 64,
        1, 2), 1, "F32", JobFixtures.TOKENIZER);
    ObjectNode cfg = (ObjectNode) OM.readTree(model.resolve("config.json").toFile());
    edit.accept(cfg);
    OM.writeValue(model.resolve("config.json").toFile(), cfg);
    return model;
  }

  /** score on the model: its exit code and stderr; asserts that no output was written. */
  static Object[] score(Path dir, Path model) throws Exception {
    Path rows = dir.resolve("rows.jsonl");
    Files.writeString(rows, "{\"prompt\": \"What is Debian?\", \"completion\": \" An operating system.\"}\n");
    Path out = dir.resolve(model.getFileName() + "-scores.jsonl");
    Object[] r = JobOutputsTest.lathe("score", "--model", model.toString(), "--input", rows.toString(), "--output",
        out.toString(), "--threads", "1"); // one thread: Par's JVM-wide default, as other tests expect
    assertFalse(Files.exists(out), "nothing written");
    return r;
  }

  static void assertBadInput(Object[] r, Path model, String key) {
    String err = (String) r[1];
    assertEquals(2, r[0], err);
    assertEquals(1, err.lines().count(), err);
    assertTrue(err.contains(model.resolve("config.json").toString()) && err.contains(key), err);
  }

  @Test
  void anUnsupportedRopeTypeExits2NamingTheFileAndTheKey(@TempDir Path tmp) throws Exception {
    Path yarn = modelWith(tmp, "yarn", c -> c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0));
    Object[] r = score(tmp, yarn);
    assertBadInput(r, yarn, "rope_scaling.rope_type = \"yarn\"");
    assertEquals("lathe score: error: " + yarn.resolve("config.json") + ": unsupported config: rope_scaling.rope_type"
        + " = \"yarn\" (supported: default, llama3)", ((String) r[1]).strip());
    Path linear = modelWith(tmp, "linear", c -> c.putObject("rope_parameters").put("type", "linear"));
    assertBadInput(score(tmp, linear), linear, "rope_parameters.type = \"linear\"");
  }

  @Test
  void aMalformedRopeSettingExits2Too(@TempDir Path tmp) throws Exception {
    Path text = modelWith(tmp, "text", c -> c.put("rope_scaling", "llama3"));
    assertBadInput(score(tmp, text), text, "rope_scaling = \"llama3\"");
    Path partial = modelWith(tmp, "partial", c -> c.putObject("rope_scaling").put("rope_type", "llama3")
        .put("factor", 8.0));
    assertBadInput(score(tmp, partial), partial, "'rope_scaling.low_freq_factor'");
    Path inverted = modelWith(tmp, "inverted", c -> c.putObject("rope_scaling").put("rope_type", "llama3")
        .put("factor", 8.0).put("low_freq_factor", 4.0).put("high_freq_factor", 1.0)
        .put("original_max_position_embeddings", 8192));
    assertBadInput(score(tmp, inverted), inverted, "rope_scaling = {");
  }

  /** The Spark jobs report it the same way (JobMain): exit 2, one line, before any output. */
  @Test
  void aSparkJobExits2Too(@TempDir Path tmp) throws Exception {
    Path yarn = modelWith(tmp, "yarn", c -> c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0));
    // as bin/lathe runs a job: the master and the driver's settings come from system properties
    Map<String, String> props = Map.of("spark.master", "local[1]", "spark.ui.enabled", "false",
        "spark.driver.host", "127.0.0.1", "spark.local.dir", "target/spark-local");
    props.forEach(System::setProperty);
    Object[] r;
    try {
      // data prepared with the same tokenizer, so that the job gets as far as the model's config
      Path good = modelWith(tmp, "good", c -> { });
      Object[] prep = JobOutputsTest.lathe("prep", "--set", "input=" + JobFixtures.INSTRUCTIONS, "--set",
          "output=" + tmp.resolve("data"), "--set", "tokenizer=" + good, "--set", "max_length=48");
      assertEquals(0, prep[0], (String) prep[1]);
      r = JobOutputsTest.lathe("sft", "--set", "model=" + yarn, "--set", "data=" + tmp.resolve("data"),
          "--set", "output=" + tmp.resolve("out"));
    } finally {
      props.keySet().forEach(System::clearProperty);
    }
    assertBadInput(r, yarn, "rope_scaling.rope_type = \"yarn\"");
    assertFalse(Files.exists(tmp.resolve("out")));
  }

  /** A supported rope setting (llama3) still loads: the refusal is of the rope type, not of rope_scaling. */
  @Test
  void llama3RopeStillScores(@TempDir Path tmp) throws Exception {
    Path l3 = modelWith(tmp, "l3", c -> c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0)
        .put("low_freq_factor", 1.0).put("high_freq_factor", 4.0).put("original_max_position_embeddings", 64));
    Path rows = tmp.resolve("rows.jsonl");
    Files.writeString(rows, "{\"prompt\": \"What is Debian?\", \"completion\": \" An operating system.\"}\n");
    Object[] r = JobOutputsTest.lathe("score", "--model", l3.toString(), "--input", rows.toString(), "--output",
        tmp.resolve("s.jsonl").toString(), "--threads", "1");
    assertEquals(0, r[0], (String) r[1]);
    assertTrue(Files.exists(tmp.resolve("s.jsonl")));
  }
}
