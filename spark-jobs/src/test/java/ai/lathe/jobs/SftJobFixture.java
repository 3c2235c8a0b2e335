package ai.lathe.jobs;

import ai.lathe.model.LlamaConfig;
import java.nio.file.Path;

/** JobFixture plus the sample instructions prepared for SFT with the model's tokenizer. */
abstract class SftJobFixture extends JobFixture {
  static Path data; // dir/prepared

  /** Opens the fixture (JobFixture.open) and prepares the SFT data with prep's max_length. */
  static void open(String appName, String prefix, LlamaConfig c, int maxLength) throws Exception {
    open(appName, prefix, c);
    data = JobFixtures.prepareSft(spark, dir.resolve("prepared"), model, maxLength);
  }
}
