package ai.lathe.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.lathe.model.Config;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An old spelling's reset and the new key's --set: the later one wins, as for any two --sets. */
class AliasResetOrderTest {
  private static Config merge(Path dir, String text, String... sets) throws Exception {
    Path f = dir.resolve("merge.yaml");
    Files.writeString(f, text);
    return Config.load(f, List.of(sets)).validate(ConfigReference.MERGE);
  }

  @Test
  void aLaterSetOfTheNewKeyIsKept(@TempDir Path tmp) throws Exception {
    assertEquals("nf4", merge(tmp, "", "base_quantize=", "quantize=nf4").str("quantize", "none"));
    assertEquals("nf4", merge(tmp, "quantize: none\n", "base_quantize=", "quantize=nf4").str("quantize", "none"));
  }

  @Test
  void aLaterResetOfTheOldSpellingResets(@TempDir Path tmp) throws Exception {
    assertEquals("none", merge(tmp, "", "quantize=nf4", "base_quantize=").str("quantize", "none"));
    assertEquals("none", merge(tmp, "quantize: nf4\n", "base_quantize=").str("quantize", "none"));
  }
}
