package ai.lathe.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Main;
import ai.lathe.model.eval.Calibration;
import ai.lathe.model.nn.Kernels;
import ai.lathe.model.nn.QuantMode;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.train.TrainMode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every enumerated key of every job (KeySpec.allowed in the reference): a value outside its list
 * fails the key check in one line naming job, key, value, origin, the allowed values and the
 * nearest; each listed value passes; the code's own parsers accept exactly the listed values.
 */
class EnumeratedValuesTest {
  /** Every (job, enumerated key) in the reference. */
  static Stream<Arguments> enumerated() {
    List<Arguments> out = new ArrayList<>();
    ConfigReference.JOBS.values().forEach(j -> j.keys().stream().filter(k -> !k.allowed().isEmpty())
        .forEach(k -> out.add(Arguments.of(j.job(), k.key()))));
    return out.stream();
  }

  @Test
  void theSettingsWithAFixedSetOfValuesAreListedAsEnumerated() {
    Set<String> keys = new TreeSet<>();
    enumerated().forEach(a -> keys.add(a.get()[1].toString()));
    assertTrue(keys.containsAll(List.of("quantize", "engine.kernels", "lora.type", "train.mode", "loss.type",
        "distributed.outer_optimizer", "judge.calibration", "judge.template", "baseline.kind", "template", "format",
        "input_type", "over_length", "stage", "kind", "pair_rejected", "method", "parameters.sign", "output.kind",
        "output.dtype")), keys.toString());
  }

  /** A near miss of the first allowed value: its last letter doubled (never itself allowed here). */
  private static String typo(KeySpec k) {
    String v = k.allowed().get(0);
    String t = v + v.charAt(v.length() - 1);
    assertTrue(!k.allowed().contains(t), t);
    return t;
  }

  @ParameterizedTest(name = "{0}: {1}")
  @MethodSource("enumerated")
  void aValueOutsideTheListIsOneLineNamingKeyValueOriginAllowedAndNearest(String job, String key, @TempDir Path tmp)
      throws Exception {
    KeySpec k = ConfigReference.of(job).get(key);
    String bad = typo(k);
    Config viaSet = Config.load(null, List.of(key + "=" + bad));
    var e = assertThrows(Config.BadValue.class, () -> viaSet.validate(ConfigReference.of(job)));
    assertEquals(job + ": '" + key + "' cannot be '" + bad + "' (in --set " + key + "=" + bad + "); allowed: "
        + String.join(", ", k.allowed()) + " (did you mean '" + k.allowed().get(0) + "'?)", e.getMessage());
    // from the file: the file is named
    Path f = tmp.resolve("job.yaml");
    Files.writeString(f, yamlOf(key, bad));
    var fe = assertThrows(Config.BadValue.class, () -> Config.load(f, List.of()).validate(ConfigReference.of(job)));
    assertTrue(fe.getMessage().contains("'" + bad + "' (in " + f + ")"), fe.getMessage());
    // a list or mapping where one word is expected is refused too
    Config list = Config.load(null, List.of(key + "=[" + k.allowed().get(0) + "]"));
    assertThrows(Config.BadValue.class, () -> list.validate(ConfigReference.of(job)));
    // every listed value passes, and so does the key unset
    for (String ok : k.allowed()) {
      Config.load(null, List.of(key + "=" + ok)).validate(ConfigReference.of(job));
    }
    Config.load(null, List.of()).validate(ConfigReference.of(job));
  }

  private static String yamlOf(String dotted, String value) {
    String[] p = dotted.split("\\.");
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < p.length; i++) {
      sb.append("  ".repeat(i)).append(p[i]).append(":").append(i == p.length - 1 ? " " + value : "").append("\n");
    }
    return sb.toString();
  }

  /** The parsers in this module accept every listed value and refuse a typo: the list is theirs. */
  @Test
  void theParsersAcceptExactlyTheListedValues() {
    agree("sft", "quantize", v -> QuantMode.fromConfig(cfg("quantize=" + v)));
    agree("sft", "train.mode", v -> TrainMode.fromConfig(cfg("train.mode=" + v)));
    agree("sft", "lora.type", v -> ai.lathe.model.adapter.LoraConfig.fromConfig(cfg("lora.type=" + v)));
    agree("eval", "judge.calibration", v -> Calibration.of(v, 0.0));
    agree("prep", "template", ChatTemplate::of);
    agree("sft", "engine.kernels", v -> Kernels.parse(v, "engine.kernels"));
  }

  private static Config cfg(String set) {
    try {
      return Config.load(null, List.of(set));
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static void agree(String job, String key, Consumer<String> parse) {
    KeySpec k = ConfigReference.of(job).get(key);
    for (String v : k.allowed()) {
      parse.accept(v);
    }
    assertThrows(IllegalArgumentException.class, () -> parse.accept(typo(k)), key);
  }

  @Test
  void theReferenceListsTheAllowedValues() {
    String md = ConfigReference.EVAL.markdown();
    assertTrue(md.contains("| `judge.calibration` | `none` | one of `none`, `balanced`. "), md);
  }

  /** Runs a command; returns its exit code and its stderr lines. */
  private static Object[] dispatch(String... argv) throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream old = System.err;
    int code;
    try {
      System.setErr(new PrintStream(err, true, "UTF-8"));
      code = Main.dispatch(argv, Main.COMMANDS);
    } finally {
      System.setErr(old);
    }
    return new Object[] {code, err.toString("UTF-8").lines().toList()};
  }

  @Test
  void aBadValueExitsTwoWithOneLineBeforeAnyWork(@TempDir Path tmp) throws Exception {
    // sft-local checks its keys before reading the (absent) model or data
    Object[] r = dispatch("sft-local", "--set", "model=" + tmp.resolve("none"), "--set",
        "data=" + tmp.resolve("none.jsonl"), "--set", "output=" + tmp.resolve("out"), "--set", "train.mode=ful");
    assertEquals(2, r[0], r[1].toString());
    assertEquals(List.of("lathe sft-local: 'train.mode' cannot be 'ful' (in --set train.mode=ful); allowed: lora, "
        + "full (did you mean 'full'?)"), r[1]);
    assertTrue(!Files.exists(tmp.resolve("out")));
  }

  @Test
  void theModelCommandsEnumeratedOptionsAreCheckedTheSameWay(@TempDir Path tmp) throws Exception {
    String[][] cases = {{"precision", "doubel", "float, double", "double"}, {"quantize", "nf5", "none, nf4", "nf4"},
        {"template", "chatm", String.join(", ", ChatTemplate.NAMES), "chatml"}};
    for (String cmd : List.of("score", "generate")) {
      for (String[] c : cases) {
        Path out = tmp.resolve(cmd + "-" + c[0] + ".jsonl");
        Object[] r = dispatch(cmd, "--model", tmp.resolve("m").toString(), "--input", tmp.resolve("in.jsonl").toString(),
            "--output", out.toString(), "--" + c[0], c[1]);
        assertEquals(2, r[0], r[1].toString());
        assertEquals(List.of("lathe " + cmd + ": --" + c[0] + " cannot be '" + c[1] + "'; allowed: " + c[2]
            + " (did you mean '" + c[3] + "'?)"), r[1]);
        assertTrue(!Files.exists(out));
      }
    }
  }
}
