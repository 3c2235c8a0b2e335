package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import java.nio.file.Path;
import java.util.Set;

/**
 * Where bin/lathe's log file goes when LATHE_LOG does not name one (bin/lathe then passes
 * {@code -Dlathe.log.file=auto}, read by conf/log4j2.properties): the pipeline's own work dir,
 * {@code <work_dir>/logs/lathe.log} (work_dir from its config and --set, as the pipeline reads
 * it); every other command, which has no work dir, {@code <java.io.tmpdir>/lathe-<user>/lathe.log}.
 * Never a folder the command was not asked to write to, such as one in the current directory.
 */
final class LogLocation {
  static final String PROPERTY = "lathe.log.file";
  static final String AUTO = "auto";

  private LogLocation() {}

  /** Replaces the property's "auto" with the command's log file; must run before anything logs. */
  static void apply(String[] argv) {
    if (AUTO.equals(System.getProperty(PROPERTY))) {
      System.setProperty(PROPERTY, of(argv, Path.of(System.getProperty("java.io.tmpdir")),
          System.getProperty("user.name", "user")).toString());
    }
  }

  /** The log file for a command line (argv[0] the command). */
  static Path of(String[] argv, Path tmp, String user) {
    Path fallback = tmp.resolve("lathe-" + user).resolve("lathe.log").toAbsolutePath();
    if (argv.length == 0 || !argv[0].equals("pipeline")) {
      return fallback;
    }
    try {
      String[] rest = java.util.Arrays.copyOfRange(argv, 1, argv.length);
      Args a = new Args("pipeline", rest, Set.of()).allow(Set.of("config", "set"));
      // the same config and default the pipeline reads (PipelineCommand.run)
      Config c = Config.load(a.has("config") ? a.path("config") : Path.of("conf/pipeline.yaml"), a.all("set"));
      return Path.of(c.str("work_dir", "work")).toAbsolutePath().resolve("logs").resolve("lathe.log");
    } catch (Exception e) {
      return fallback; // the pipeline reports its bad arguments or config itself
    }
  }
}
