package ai.lathe.model;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** Lathe's code version, recorded in every output's provenance. */
public final class Version {
  private Version() {}

  public static String get() {
    try (InputStream in = Version.class.getResourceAsStream("version.properties")) {
      Properties p = new Properties();
      if (in != null) {
        p.load(in);
      }
      return p.getProperty("version", "unknown");
    } catch (IOException e) {
      return "unknown";
    }
  }
}
