package ai.lathe.it;

import ai.lathe.model.Faults;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Kills the executor JVM it runs in, once: in partition 1 at the start of any round after the
 * first, when {@code -Dlathe.test.haltOnceMarker=<file>} is set (the marker file records that it
 * happened). Registered in META-INF/services, so executor JVMs started with the test classpath
 * load it; without the property it does nothing.
 */
public final class HaltOnce implements Faults.Hook {
  @Override
  public void at(String point, long partition, long startStep) {
    String marker = System.getProperty("lathe.test.haltOnceMarker");
    if (marker == null || !point.equals(Faults.SFT_ROUND_START) || partition != 1 || startStep == 0) {
      return;
    }
    try {
      Files.createFile(Path.of(marker));
    } catch (IOException e) {
      return; // already killed once
    }
    Runtime.getRuntime().halt(137);
  }
}
