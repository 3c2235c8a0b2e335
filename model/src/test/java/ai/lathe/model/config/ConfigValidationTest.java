package ai.lathe.model.config;

import static ai.lathe.model.config.JobYaml.yaml;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import ai.lathe.model.cli.Main;
import ai.lathe.model.nn.QuantMode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Unknown keys and flags fail with the key, its origin and the nearest known name; old spellings map to new. */
class ConfigValidationTest {
  @Test
  void aTypoInTheFileNamesTheKeyTheFileAndTheNearestKey(@TempDir Path tmp) throws Exception {
    Config c = yaml(tmp, "model: m\ndata: d\noutput: o\nlora:\n  r: 8\n  rnak: 4\n");
    var e = assertThrows(Args.UsageException.class, () -> c.validate(ConfigReference.SFT));
    assertEquals("sft: unknown key 'lora.rnak' in " + tmp.resolve("job.yaml") + " (did you mean 'lora.r'?)",
        e.getMessage());
  }

  @Test
  void aTypoInASetNamesTheSet(@TempDir Path tmp) throws Exception {
    Config c = yaml(tmp, "model: m\n", "train.lrr=0.1");
    var e = assertThrows(Args.UsageException.class, () -> c.validate(ConfigReference.SFT));
    assertTrue(e.getMessage().contains("unknown key 'train.lrr' in --set train.lrr=0.1 (did you mean 'train.lr'?)"),
        e.getMessage());
    Config top = yaml(tmp, "input: i\n", "ouput=x");
    var t = assertThrows(Args.UsageException.class, () -> top.validate(ConfigReference.PREP));
    assertTrue(t.getMessage().contains("'ouput' in --set ouput=x (did you mean 'output'?)"), t.getMessage());
  }

  @Test
  void everyUnknownKeyIsListedAndKnownOnesPass(@TempDir Path tmp) throws Exception {
    Config c = yaml(tmp, "model: m\ndistributed: {partitons: 2, eval_every: 1}\nlora: {alhpa: 3}\n");
    var e = assertThrows(Args.UsageException.class, () -> c.validate(ConfigReference.SFT));
    assertTrue(e.getMessage().contains("'distributed.partitons'") && e.getMessage().contains("also unknown: lora.alhpa"),
        e.getMessage());
    // the shipped shape of every key passes
    yaml(tmp, "model: m\ndata: d\noutput: o\nquantize: nf4\ndouble_quant: true\ndistributed: {partitions: 2}\n"
        + "train: {lr: 0.1, seed: 3}\n").validate(ConfigReference.SFT);
  }

  @Test
  void keysInsideFreeMapsAreNotChecked(@TempDir Path tmp) throws Exception {
    yaml(tmp, "lora:\n  rank_pattern: {\"layers.0.self_attn.q_proj\": 4, anything_goes: 2}\n"
        + "  alpha_pattern: {down_proj: 8}\n").validate(ConfigReference.DPO);
    yaml(tmp, "fields: {instruction: question, whatever: x}\n").validate(ConfigReference.PREP);
    yaml(tmp, "sft:\n  set: {train.max_steps: 3, anything: 1}\nmerge:\n  sft_set: {x: 1}\n")
        .validate(ConfigReference.PIPELINE);
    // a map key is still checked itself
    var e = assertThrows(Args.UsageException.class,
        () -> yaml(tmp, "lora:\n  rank_patern: {q_proj: 4}\n").validate(ConfigReference.DPO));
    assertTrue(e.getMessage().contains("did you mean 'lora.rank_pattern'"), e.getMessage());
  }

  @Test
  void listedObjectsAreCheckedField(@TempDir Path tmp) throws Exception {
    Config c = yaml(tmp, "base_model: b\nadapters:\n  - a1\n  - {path: a2, wieght: 2}\noutput: {path: o}\n");
    var e = assertThrows(Args.UsageException.class, () -> c.validate(ConfigReference.MERGE));
    assertTrue(e.getMessage().contains("unknown key 'adapters[1].wieght'")
        && e.getMessage().contains("did you mean 'adapters[].weight'"), e.getMessage());
    var gate = assertThrows(Args.UsageException.class,
        () -> yaml(tmp, "base_model: b\ngate: {data: d, max_val_los: 3}\n").validate(ConfigReference.MERGE_JOB));
    assertTrue(gate.getMessage().contains("'gate.max_val_loss'"), gate.getMessage());
    // merge has no gate: merge-job's keys are not merge's
    var noGate = assertThrows(Args.UsageException.class,
        () -> yaml(tmp, "base_model: b\ngate: {data: d}\n").validate(ConfigReference.MERGE));
    assertTrue(noGate.getMessage().contains("unknown key 'gate' "), noGate.getMessage());
  }

  @Test
  void oldSpellingsMapToTheNewKeysWithOneLineEach(@TempDir Path tmp) throws Exception {
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true));
    Config local;
    Config merge;
    try {
      local = yaml(tmp, "model: m\noutput: o\ndata:\n  path: rows.jsonl\n  format: messages\n  langs: [en]\n"
          + "train:\n  eval_every: 5\n  lr: 0.1\n").validate(ConfigReference.SFT_LOCAL);
      merge = yaml(tmp, "base_model: b\nbase_quantize: nf4\n", "base_double_quant=true").validate(ConfigReference.MERGE);
    } finally {
      System.setErr(err);
    }
    assertEquals("rows.jsonl", local.str("data", null));
    assertEquals("messages", local.str("format", null));
    assertEquals(List.of("en"), local.strings("data_langs", null));
    assertEquals(5, local.integer("distributed.eval_every", 0));
    assertEquals(0.1, local.number("train.lr", 0));
    assertNull(local.node("train.eval_every"));
    assertEquals("nf4", merge.str("quantize", null));
    assertTrue(merge.bool("double_quant", false));
    String msg = buf.toString();
    assertTrue(msg.contains("'data.path' is deprecated, use 'data'"), msg);
    assertTrue(msg.contains("--set base_double_quant=true: 'base_double_quant' is deprecated, use 'double_quant'"), msg);
    assertEquals(6, msg.lines().count(), msg);
    // both spellings at once is ambiguous
    var both = assertThrows(Args.UsageException.class,
        () -> yaml(tmp, "base_model: b\nbase_quantize: nf4\nquantize: none\n").validate(ConfigReference.MERGE));
    assertTrue(both.getMessage().contains("'base_quantize' (deprecated) and 'quantize' are both set"), both.getMessage());
  }

  @Test
  void quantisationIsOneEnumReadFromTwoKeys(@TempDir Path tmp) throws Exception {
    assertEquals(QuantMode.NONE, QuantMode.fromConfig(yaml(tmp, "model: m\n")));
    assertEquals(QuantMode.NF4, QuantMode.fromConfig(yaml(tmp, "quantize: nf4\n")));
    QuantMode dq = QuantMode.fromConfig(yaml(tmp, "quantize: nf4\ndouble_quant: true\n"));
    assertEquals("nf4-dq", dq.word);
    assertEquals("nf4", dq.base());
    assertTrue(dq.doubleQuant());
    assertEquals(dq, QuantMode.of("nf4-dq"));
    var bad = assertThrows(IllegalArgumentException.class, () -> QuantMode.fromConfig(yaml(tmp, "quantize: nf8\n")));
    assertTrue(bad.getMessage().endsWith("job.yaml: quantize must be none or nf4, got 'nf8'"), bad.getMessage());
    var lone = assertThrows(IllegalArgumentException.class,
        () -> QuantMode.fromConfig(yaml(tmp, "double_quant: true\n")));
    assertTrue(lone.getMessage().contains("double_quant needs quantize: nf4"), lone.getMessage());
  }

  @Test
  void nearestIsByEditDistance() {
    assertEquals(2, Nearest.distance("rnak", "rank"));
    assertEquals(0, Nearest.distance("", ""));
    assertEquals(3, Nearest.distance("kitten", "sitting"));
    assertEquals("output", Nearest.of("ouput", List.of("input", "output", "model")));
  }

  @Test
  void anUnknownFlagNamesTheNearestFlag() {
    var e = assertThrows(Args.UsageException.class, () -> new Args("score", new String[] {"--ouput", "x"},
        Set.of("double-quant")).allow(Set.of("model", "output", "input")));
    assertEquals("score: unknown option --ouput (did you mean --output?)", e.getMessage());
    var f = assertThrows(Args.UsageException.class, () -> new Args("score", new String[] {"--double-qant"},
        Set.of("double-quant")).allow(Set.of("model", "output", "input")));
    assertTrue(f.getMessage().contains("did you mean --double-quant?"), f.getMessage());
    var g = assertThrows(Args.UsageException.class, () -> new Args("score", new String[] {"--double-qant", "--model",
        "m"}, Set.of("double-quant")).allow(Set.of("model", "output", "input")));
    assertTrue(g.getMessage().contains("did you mean --double-quant?"), g.getMessage());
    // a known option without its value is still named as such
    var h = assertThrows(Args.UsageException.class, () -> new Args("score", new String[] {"--model"},
        Set.of()).allow(Set.of("model")));
    assertEquals("score: option --model needs a value", h.getMessage());
    assertThrows(Args.UsageException.class, () -> new Args("score", new String[] {"--model"}, Set.of()).has("model"));
  }

  /** Commands return 2 on a typo, before any work: the model named does not exist, so work would fail with 1. */
  @Test
  void commandsExitTwoOnATypo(@TempDir Path tmp) throws Exception {
    String missing = tmp.resolve("no-model").toString();
    assertEquals(2, Main.dispatch(new String[] {"score", "--model", missing, "--inptu", "x", "--output", "y"},
        Main.COMMANDS));
    assertEquals(2, Main.dispatch(new String[] {"quantize", "--model", missing, "--outptu", "y"}, Main.COMMANDS));
    Path yaml = tmp.resolve("local.yaml");
    Files.writeString(yaml, "model: " + missing + "\ndata: rows.jsonl\noutput: " + tmp.resolve("out") + "\n"
        + "lora: {rnak: 4}\n");
    assertEquals(2, Main.dispatch(new String[] {"sft-local", "--config", yaml.toString()}, Main.COMMANDS));
    Files.writeString(yaml, "model: " + missing + "\ndata: rows.jsonl\noutput: " + tmp.resolve("out") + "\n");
    assertEquals(2, Main.dispatch(new String[] {"sft-local", "--config", yaml.toString(), "--set", "train.lr_=1"},
        Main.COMMANDS));
    // without the typo the same command gets to work and fails on the missing model (1)
    assertEquals(1, Main.dispatch(new String[] {"sft-local", "--config", yaml.toString()}, Main.COMMANDS));
    assertTrue(Files.notExists(tmp.resolve("out")));
  }

  @Test
  void theReferenceIsWellFormed() {
    for (JobKeys j : ConfigReference.JOBS.values()) {
      for (KeySpec k : j.keys()) {
        assertTrue(!k.dflt().isEmpty() || k.key().endsWith("adapter"), j.job() + ": " + k.key() + " has no default");
      }
    }
    assertEquals("2e-4", KeySpec.render(2e-4));
    assertEquals("5e-5", KeySpec.render(5e-5));
    assertEquals("0.1", KeySpec.render(0.1));
    assertEquals("[en, de]", KeySpec.render(List.of("en", "de")));
  }

  /** README.md's "Configuration reference" section is ConfigReference.markdown() (regenerate: ConfigReference.main). */
  @Test
  void theReadmeSectionIsGeneratedFromTheReference() throws Exception {
    String readme = Files.readString(Path.of("../README.md"));
    assertEquals(ConfigReference.markdown(), ConfigReference.readmeSection(readme),
        "README.md is stale: run ai.lathe.model.config.ConfigReference with the README path to regenerate it");
  }
}
