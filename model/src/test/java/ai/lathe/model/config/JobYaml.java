package ai.lathe.model.config;

import ai.lathe.model.Config;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** A job config as the jobs load it: text written to dir/job.yaml, then the --set overrides in order. */
final class JobYaml {
  private JobYaml() {}

  static Config yaml(Path dir, String text, String... sets) throws Exception {
    Path f = dir.resolve("job.yaml");
    Files.writeString(f, text);
    return Config.load(f, List.of(sets));
  }
}
