package ai.lathe.model.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The commands that need no Spark. The launcher (bin/lathe) dispatches here through the
 * spark-jobs entry point, which adds the Spark jobs.
 */
public final class Main {
  /** A command: its entry point and usage text. */
  public record Command(String usage, Entry entry) {}

  /** A command's entry point. */
  @FunctionalInterface
  public interface Entry {
    int run(String[] args) throws Exception;
  }

  public static final Map<String, Command> COMMANDS = new LinkedHashMap<>();

  static {
    COMMANDS.put("init-model", new Command(InitModelCommand.USAGE, InitModelCommand::run));
    COMMANDS.put("sft-local", new Command(SftCommand.USAGE, SftCommand::run));
    COMMANDS.put("score", new Command(ScoreCommand.USAGE, ScoreCommand::run));
    COMMANDS.put("generate", new Command(GenerateCommand.USAGE, GenerateCommand::run));
    COMMANDS.put("bench", new Command(BenchCommand.USAGE, BenchCommand::run));
    COMMANDS.put("quantize", new Command(QuantizeCommand.USAGE, QuantizeCommand::run));
  }

  private Main() {}

  public static void main(String[] argv) {
    System.exit(dispatch(argv, COMMANDS));
  }

  /** Runs argv[0] from the given commands; returns the exit code (0 only on success). */
  public static int dispatch(String[] argv, Map<String, Command> commands) {
    if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("help")) {
      System.out.println("usage: lathe <command> [--help] [options]\n\ncommands:");
      commands.forEach((k, v) -> System.out.println("  " + k));
      return argv.length == 0 ? 2 : 0;
    }
    Command c = commands.get(argv[0]);
    if (c == null) {
      System.err.println("lathe: unknown command '" + argv[0] + "' (try lathe --help)");
      return 2;
    }
    String[] rest = Arrays.copyOfRange(argv, 1, argv.length);
    if (Arrays.asList(rest).contains("--help")) {
      System.out.println(c.usage());
      return 0;
    }
    try {
      return c.entry().run(rest);
    } catch (Args.UsageException e) {
      System.err.println("lathe " + e.getMessage());
      if (!(e instanceof ai.lathe.model.Config.BadValue)) { // a bad value is one line
        System.err.println(c.usage());
      }
      return 2;
    } catch (ai.lathe.model.io.OutputGuard.Refused e) {
      System.err.println("lathe " + e.getMessage());
      return ai.lathe.model.io.OutputGuard.EXIT;
    } catch (Exception e) {
      // one line (the innermost cause's first line); the stack trace only with LATHE_DEBUG
      Throwable root = e;
      while (root.getCause() != null && root.getCause() != root && !(root instanceof IllegalArgumentException)) {
        root = root.getCause();
      }
      String msg = root.getMessage() == null ? root.toString() : root.getMessage().lines().findFirst().orElse("");
      boolean known = e instanceof IOException || e instanceof UncheckedIOException
          || e instanceof IllegalArgumentException || e instanceof IllegalStateException;
      String line = "lathe " + argv[0] + ": " + (known ? "error: " : "failed: " + root.getClass().getSimpleName() + ": ")
          + msg;
      String log = System.getProperty("lathe.log.file"); // set by bin/lathe, whose classpath binds slf4j to log4j
      if (log != null) {
        org.slf4j.LoggerFactory.getLogger("ai.lathe").error(line, e);
      }
      System.err.println(line + (log == null ? "" : " (details in " + log + ")"));
      if (System.getenv("LATHE_DEBUG") != null) {
        e.printStackTrace();
      }
      return ai.lathe.model.ConfigJsonRefusal.exitCode(e, 1); // a refused config.json is bad input: 2
    }
  }
}
