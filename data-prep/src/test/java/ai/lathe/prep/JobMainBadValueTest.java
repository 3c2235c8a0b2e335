package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A job's bad enumerated value: exit 2 and one line on stderr, before Spark or the job body runs. */
class JobMainBadValueTest {
  @Test
  void aCalibrationTypoIsOneLineAndExitTwo() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream old = System.err;
    int code;
    try {
      System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
      code = JobMain.run("eval", new String[] {"--set", "model=m", "--set", "judge.model=j", "--set", "data=d",
          "--set", "output=o", "--set", "judge.calibration=balance"}, "USAGE", (c, h) -> {
            throw new AssertionError("the output checks ran");
          }, (spark, c) -> {
            throw new AssertionError("the job ran");
          });
    } finally {
      System.setErr(old);
    }
    String text = err.toString(StandardCharsets.UTF_8);
    assertEquals(2, code, text);
    assertEquals(List.of("lathe eval: 'judge.calibration' cannot be 'balance' (in --set judge.calibration=balance); "
        + "allowed: none, balanced (did you mean 'balanced'?)"), text.lines().toList());
  }
}
