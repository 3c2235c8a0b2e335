package ai.lathe.prep;

import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.io.OutputGuard;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
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
    // every --key is accepted here; the job's key reference below rejects unknown ones, naming the nearest
    Args a = new Args(name, argv, Set.of()).allow(new java.util.HashSet<>(namesOf(argv)));
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

  /** What a job writes and reads, for the checks and the lock taken before Spark starts. */
  @FunctionalInterface
  public interface Guard {
    OutputGuard.Spec spec(Config c, Configuration hconf) throws Exception;
  }

  public static int run(String name, String[] argv, String usage, Body body) {
    return run(name, argv, usage, null, body);
  }

  /**
   * As above; guard (may be null) names the job's output and inputs: they are checked and the
   * output locked before the Spark session starts, and the lock is released at the end, also on
   * failure.
   */
  public static int run(String name, String[] argv, String usage, Guard guard, Body body) {
    if (List.of(argv).contains("--help")) {
      System.out.println(usage);
      return 0;
    }
    Config c;
    try {
      c = config(name, argv);
    } catch (Args.UsageException e) {
      System.err.println("lathe " + e.getMessage());
      if (!(e instanceof Config.BadValue)) { // a bad value is one line
        System.err.println(usage);
      }
      return 2;
    } catch (Exception e) {
      System.err.println("lathe " + name + ": error: " + e.getMessage());
      return 1;
    }
    SparkSession spark = null;
    OutputGuard.Lease lease = null;
    String output = null;
    try {
      if (guard != null) {
        OutputGuard.Spec spec = guard.spec(c, HadoopStore.beforeSpark());
        output = spec.output();
        lease = HadoopStore.acquire(spec, HadoopStore.beforeSpark());
      }
      spark = SparkSession.builder().appName("lathe-" + name).getOrCreate();
      body.run(spark, c);
      return 0;
    } catch (OutputGuard.Refused e) {
      System.err.println("lathe " + e.getMessage());
      return OutputGuard.EXIT;
    } catch (ExitCode e) {
      System.err.println("lathe " + name + ": " + e.getMessage());
      return e.code;
    } catch (Exception e) {
      return fail(name, e, output);
    } finally {
      if (spark != null) {
        spark.stop();
      }
      if (lease != null) {
        try {
          lease.close();
        } catch (java.io.IOException e) {
          System.err.println("lathe " + name + ": warning: could not release " + lease.lockPath() + ": "
              + e.getMessage());
        }
      }
    }
  }

  /**
   * Reports a failure in one line on stderr (the stack trace goes to the log, and to stderr with
   * LATHE_DEBUG set); returns the exit code: 2 for a refused config.json of the model (bad input), else 1.
   */
  public static int fail(String name, Throwable e, String output) {
    String line = "lathe " + name + ": error: " + oneLine(e, output);
    org.slf4j.LoggerFactory.getLogger("ai.lathe").error(line, e);
    String log = System.getProperty("lathe.log.file");
    System.err.println(line + (log == null ? "" : " (details in " + log + ")"));
    if (System.getenv("LATHE_DEBUG") != null) {
      e.printStackTrace();
    }
    return ai.lathe.model.ConfigJsonRefusal.exitCode(e, 1);
  }

  /**
   * The cause of a failure in one line: the innermost message (an IllegalArgumentException is a
   * Lathe diagnosis and kept as is), its first line only; a full disk names the output written.
   */
  public static String oneLine(Throwable e, String output) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root && !(root instanceof IllegalArgumentException)) {
      root = root.getCause();
    }
    String msg = root.getMessage() == null ? root.toString() : root.getMessage();
    int nl = msg.indexOf('\n');
    msg = (nl >= 0 ? msg.substring(0, nl) : msg).strip();
    boolean full = false;
    for (Throwable t = e; t != null && !full; t = t.getCause() == t ? null : t.getCause()) {
      full = t.getMessage() != null && t.getMessage().contains("No space left on device");
    }
    if (full && output != null && !msg.contains(output)) {
      msg = "no space left on device while writing " + output + " (" + msg + "); nothing was replaced";
    }
    return msg;
  }
}
