package ai.lathe.model.config;

import static ai.lathe.model.config.JobYaml.yaml;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An empty value (--set key=, --key=) resets the key to its default; a required key cannot be reset. */
class EmptyValueTest {
  @Test
  void anEmptySetResetsTheFilesValueToTheDefault(@TempDir Path tmp) throws Exception {
    Config c = yaml(tmp, "model: m\ndata: d\noutput: o\nlora: {r: 4, alpha: 2.0}\nquantize: nf4\n",
        "lora.r=", "quantize=").validate(ConfigReference.SFT);
    assertEquals(8, c.integer("lora.r", 8));
    assertEquals("none", c.str("quantize", "none"));
    assertEquals(2.0, c.number("lora.alpha", 16.0)); // its neighbour stays
    // a later value wins over the reset, and a reset over an earlier value
    assertEquals(3, yaml(tmp, "model: m\n", "lora.r=", "lora.r=3").integer("lora.r", 8));
    assertEquals(8, yaml(tmp, "model: m\n", "lora.r=3", "lora.r=").integer("lora.r", 8));
    // the same as a key with no value in the file
    assertEquals(8, yaml(tmp, "lora:\n  r:\n").integer("lora.r", 8));
  }

  @Test
  void anEmptyStringIsSetOnlyWhenQuoted(@TempDir Path tmp) throws Exception {
    Config c = yaml(tmp, "adapter: a\n", "adapter=\"\"");
    assertEquals("", c.str("adapter", "dflt"));
    assertNull(yaml(tmp, "adapter: a\n", "adapter=").node("adapter"));
  }

  @Test
  void aYamlValueFromAnotherConfigKeepsItsTypeAndANullResets(@TempDir Path tmp) throws Exception {
    Config c = yaml(tmp, "lora: {r: 4}\n");
    var yaml = new com.fasterxml.jackson.databind.ObjectMapper(new com.fasterxml.jackson.dataformat.yaml.YAMLFactory());
    c.set("lora.target_modules", yaml.readTree("[q_proj, v_proj]"), "pipeline sft.set");
    c.set("lora.r", com.fasterxml.jackson.databind.node.NullNode.getInstance(), "pipeline sft.set");
    assertEquals(List.of("q_proj", "v_proj"), c.strings("lora.target_modules", List.of()));
    assertEquals(8, c.integer("lora.r", 8));
    // a reset required key is named with that origin
    Config m = yaml(tmp, "model: m\ndata: d\noutput: o\n");
    m.set("model", null, "pipeline sft.set.model");
    var e = assertThrows(Config.BadValue.class, () -> m.validate(ConfigReference.SFT));
    assertTrue(e.getMessage().contains("(in pipeline sft.set.model)"), e.getMessage());
  }

  @Test
  void resettingARequiredKeyNamesIt(@TempDir Path tmp) throws Exception {
    Config c = yaml(tmp, "model: m\ndata: d\noutput: o\n", "model=");
    var e = assertThrows(Config.BadValue.class, () -> c.validate(ConfigReference.SFT));
    assertEquals("sft: 'model' is required and has no default to reset to (in --set model=): give it a value",
        e.getMessage());
    // given again after the reset: fine
    yaml(tmp, "data: d\noutput: o\n", "model=", "model=m2").validate(ConfigReference.SFT);
  }

  @Test
  void anEmptySetOfAnUnknownKeyIsStillUnknown(@TempDir Path tmp) throws Exception {
    var e = assertThrows(Args.UsageException.class,
        () -> yaml(tmp, "model: m\n", "lora.rr=").validate(ConfigReference.SFT));
    assertTrue(e.getMessage().contains("unknown key 'lora.rr' in --set lora.rr= (did you mean 'lora.r'?)"),
        e.getMessage());
    // inside a free map, and a whole section, are known
    yaml(tmp, "lora: {rank_pattern: {q_proj: 4}}\n", "lora.rank_pattern.q_proj=", "distributed=")
        .validate(ConfigReference.SFT);
    // an old spelling resets the new key
    Config m = yaml(tmp, "quantize: nf4\n", "base_quantize=").validate(ConfigReference.MERGE);
    assertEquals("none", m.str("quantize", "none"));
  }

  @Test
  void anEmptyOptionIsTheDefaultToo() {
    Args a = new Args("x", new String[] {"--template=llama2", "--template=", "--overwrite=", "--batch", "",
        "--output="}, Set.of("overwrite")).allow(Set.of("template", "batch", "output"));
    assertEquals("chatml", a.str("template", "chatml"));
    assertFalse(a.has("template"));
    assertFalse(a.flag("overwrite"));
    assertEquals(4, a.integer("batch", 4));
    var e = assertThrows(Args.UsageException.class, () -> a.need("output"));
    assertEquals("x: missing required option --output (an empty value resets it, and it has no default)",
        e.getMessage());
  }
}
