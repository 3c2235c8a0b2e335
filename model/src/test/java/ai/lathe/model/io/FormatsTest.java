package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** HfLayout, PeftKeys and AtomicCommit: the formats kept in one place. */
class FormatsTest {
  @Test
  void layoutHoldsEveryParameterOfEachFamily() {
    for (String f : List.of("llama", "llama3", "qwen2", "qwen3", "mistral")) {
      for (boolean tie : new boolean[] {false, true}) {
        LlamaConfig c = LlamaConfig.family(f, 50, 32, 3, 4, 2, 40, 0, 10000.0, tie, 64, f.equals("mistral") ? 16 : 0);
        long n = 0;
        for (long[] s : HfLayout.shapes(c).values()) {
          long k = 1;
          for (long x : s) {
            k *= x;
          }
          n += k;
        }
        // an independent count: LlamaConfig's own formula
        assertEquals(c.parameterCount(), n, f + " tie=" + tie);
        assertEquals(!tie, HfLayout.shapes(c).containsKey(HfLayout.LM_HEAD));
      }
    }
    assertEquals("model.layers.2.mlp.down_proj.weight", HfLayout.weight(2, "down_proj"));
    assertEquals("model.layers.0.self_attn.q_proj", HfLayout.modulePath(0, "q_proj"));
  }

  @Test
  void peftKeysRoundTrip() {
    String path = HfLayout.modulePath(3, "up_proj");
    assertEquals("base_model.model.model.layers.3.mlp.up_proj.lora_A.weight", PeftKeys.loraA(path));
    assertEquals(path, PeftKeys.pathOfLoraA(PeftKeys.loraA(path)));
    assertNull(PeftKeys.pathOfLoraA(PeftKeys.loraB(path)));
    PeftKeys.Parsed p = PeftKeys.parse(PeftKeys.magnitude(path));
    assertEquals(new PeftKeys.Parsed(path, 3, "mlp", "up_proj", PeftKeys.MAGNITUDE, ""), p);
    assertTrue(p.wellFormed());
    // PEFT's in-memory adapter name is accepted; a lora_B without .weight is not well formed
    assertEquals(".default.weight", PeftKeys.parse(PeftKeys.PREFIX + path + ".lora_B.default.weight").suffix());
    assertFalse(PeftKeys.parse(PeftKeys.PREFIX + path + ".lora_B").wellFormed());
    assertNull(PeftKeys.parse("model.layers.3.mlp.up_proj.weight"));
  }

  /** The local file system, failing renames onto one path as often as asked. */
  static final class Flaky implements AtomicCommit.Fs<Path> {
    final Path failOnto;
    int failures;

    Flaky(Path failOnto, int failures) {
      this.failOnto = failOnto;
      this.failures = failures;
    }

    @Override
    public boolean exists(Path p) {
      return Files.exists(p);
    }

    @Override
    public void rename(Path from, Path to) throws IOException {
      if (to.equals(failOnto) && failures-- > 0) {
        throw new IOException("injected rename failure");
      }
      AtomicDir.LOCAL.rename(from, to);
    }

    @Override
    public void deleteTree(Path p) throws IOException {
      AtomicDir.deleteTree(p);
    }

    @Override
    public Path sibling(Path p, String name) {
      return p.resolveSibling(name);
    }

    @Override
    public String name(Path p) {
      return p.getFileName().toString();
    }
  }

  @Test
  void commitReplacesOrRestores(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out");
    Files.createDirectories(out);
    Files.writeString(out.resolve("f"), "old");
    Path tmp = AtomicCommit.tempSibling(AtomicDir.LOCAL, out);
    Files.createDirectories(tmp);
    Files.writeString(tmp.resolve("f"), "new");
    // the new folder's rename fails: the old output is back in place, the new one still in tmp
    assertThrows(IOException.class, () -> AtomicCommit.commit(new Flaky(out, 1), tmp, out));
    assertEquals("old", Files.readString(out.resolve("f")));
    assertTrue(Files.exists(tmp));
    AtomicCommit.commit(new Flaky(out, 0), tmp, out);
    assertEquals("new", Files.readString(out.resolve("f")));
    try (var s = Files.list(dir)) {
      assertEquals(List.of(out), s.toList(), "no .tmp or .old sibling left");
    }
  }
}
