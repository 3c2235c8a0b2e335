package ai.lathe.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A misspelt -Dlathe.hugepages or -Dlathe.gemm stops the first small buffer or product with a
 * message naming it, instead of running as the default. Each setting is read once per JVM, so each
 * case runs in a JVM of its own.
 */
class SettingTypoTest {
  /** Allocates one small model buffer and runs one small product; exit 3 with the message if refused. */
  public static void main(String[] args) {
    try {
      Buf.zeros(DataType.FLOAT, 2, 2);
      Matmul.gemm(Nd4j.ones(DataType.FLOAT, 2, 2), Nd4j.ones(DataType.FLOAT, 2, 2), Nd4j.zeros(DataType.FLOAT, 2, 2),
          false, false, 1.0, 0.0);
      System.out.println("ran");
    } catch (IllegalArgumentException e) {
      System.out.println("refused: " + e.getMessage());
      System.exit(3);
    }
  }

  private static String[] run(String setting) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(List.of(System.getProperty("java.home") + "/bin/java", setting, "-cp",
        System.getProperty("java.class.path"), SettingTypoTest.class.getName())).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return new String[] {String.valueOf(p.waitFor()), out};
  }

  @Test
  void misspeltSettingsStopTheFirstBufferOrProduct() throws Exception {
    String[] ok = run("-Dlathe.hugepages=false");
    assertEquals("0", ok[0], ok[1]);
    assertTrue(ok[1].contains("ran"), ok[1]);
    String[] pages = run("-Dlathe.hugepages=ture");
    assertEquals("3", pages[0], pages[1]);
    assertTrue(pages[1].contains("refused: -Dlathe.hugepages=ture: expected true (the default) or false"), pages[1]);
    String[] gemm = run("-Dlathe.gemm=onedn");
    assertEquals("3", gemm[0], gemm[1]);
    assertTrue(gemm[1].contains("refused: -Dlathe.gemm=onedn: expected onednn (the default) or nd4j"), gemm[1]);
  }
}
