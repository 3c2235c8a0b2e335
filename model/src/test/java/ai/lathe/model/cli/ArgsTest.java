package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The option syntax every flag command shares (typos: ConfigValidationTest). */
class ArgsTest {
  static Args parse(String... argv) {
    return new Args("cmd", argv, Set.of("overwrite", "tie")).allow(Set.of("model", "set", "seed"));
  }

  @Test
  void formsOfOptionsAndFlags() {
    Args a = parse("--model", "m", "--set=a=1", "--set", "b=2", "--overwrite", "--tie=false", "--seed", "-3");
    assertEquals("m", a.str("model", null));
    assertEquals(List.of("a=1", "b=2"), a.all("set"));
    assertEquals(-3, a.integer("seed", 0));
    assertTrue(a.flag("overwrite"));
    assertFalse(a.flag("tie"));
    assertFalse(parse("--model", "m").flag("overwrite"));
    assertEquals("x", parse("--model", "m", "--model", "x").str("model", null), "the last of a repeated option wins");
  }

  @Test
  void strayArgumentsAndMissingValuesAreUsageErrors() {
    var stray = assertThrows(Args.UsageException.class, () -> parse("--model", "m", "extra"));
    assertEquals("cmd: unexpected argument 'extra'", stray.getMessage());
    var missing = assertThrows(Args.UsageException.class, () -> parse("--model", "--overwrite"));
    assertEquals("cmd: option --model needs a value", missing.getMessage());
    var bad = assertThrows(Args.UsageException.class, () -> parse("--seed", "x").integer("seed", 0));
    assertEquals("cmd: --seed must be an integer, got 'x'", bad.getMessage());
  }
}
