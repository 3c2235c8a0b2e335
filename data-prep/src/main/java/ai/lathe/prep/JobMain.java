package ai.lathe.prep;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import ai.lathe.model.config.ConfigReference;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * The thin main of every Spark job: parse args → load config → build the session (the master
 * comes from spark-submit or the launcher, never from here) → run → stop. Returns the exit code:
 * 0 only when the job's output was committed.
 */
public final class JobMain {
  /** A job body. */
  @FunctionalInterface
  public interface Body {
    Object run(SparkSession spark, Config config) throws Exception;
  }

  /** A failure with its own exit code (for example a refused merge gate: 3). */
  public static class ExitCode extends RuntimeException {
    public final int code;

    public ExitCode(int code, String msg) {
      super(msg);
      this.code = code;
    }
  }

  private JobMain() {}

  /**
   * --config FILE, --set k=v (repeatable), and any other --key value as a shortcut for
   * --set key=value (dashes become underscores); then every key is checked against the job's
   * reference (ConfigReference, by job name): an unknown one is a usage error (exit 2), before
   * Spark starts.
   */
  public static Config config(String name, String[] argv) throws Exception {
    Args a = new Args(name, argv, Set.of());
    Config c = Config.load(a.has("config") ? Path.of(a.need("config")) : null, a.all("set"));
    for (String k : List.copyOf(namesOf(argv))) {
      if (!k.equals("config") && !k.equals("set")) {
        c.set(k.replace('-', '_') + "=" + a.str(k, ""), "--" + k);
      }
    }
    return c.validate(ConfigReference.of(name));
  }

  private static List<String> namesOf(String[] argv) {
    List<String> out = new ArrayList<>();
    for (String s : argv) {
      if (s.startsWith("--")) {
        String k = s.substring(2);
        int eq = k.indexOf('=');
        out.add(eq >= 0 ? k.substring(0, eq) : k);
      }
    }
    return out;
  }

  public static int run(String name, String[] argv, String usage, Body body) {
    if (List.of(argv).contains("--help")) {
      System.out.println(usage);
      return 0;
    }
    Config c;
    try {
      c = config(name, argv);
    } catch (Args.UsageException e) {
      System.err.println("lathe " + e.getMessage());
      System.err.println(usage);
      return 2;
    } catch (Exception e) {
      System.err.println("lathe " + name + ": error: " + e.getMessage());
      return 1;
    }
    SparkSession spark = SparkSession.builder().appName("lathe-" + name).getOrCreate();
    try {
      body.run(spark, c);
      return 0;
    } catch (ExitCode e) {
      System.err.println("lathe " + name + ": " + e.getMessage());
      return e.code;
    } catch (Exception e) {
      Throwable root = e;
      while (root.getCause() != null && root.getCause() != root && !(root instanceof IllegalArgumentException)) {
        root = root.getCause();
      }
      System.err.println("lathe " + name + ": error: " + (root.getMessage() == null ? root.toString() : root.getMessage()));
      if (System.getenv("LATHE_DEBUG") != null) {
        e.printStackTrace();
      }
      return 1;
    } finally {
      spark.stop();
    }
  }
}
