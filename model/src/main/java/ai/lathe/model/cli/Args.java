package ai.lathe.model.cli;

import ai.lathe.model.config.Nearest;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import picocli.CommandLine;

/**
 * GNU-style options parsed by picocli from a spec built per command (the allowed options and the
 * flags): --key value, --key=value, bare --flag (or --flag=false); repeated keys are kept. A typo
 * fails before any work with the nearest known option (exit 2 through {@link UsageException}).
 * Values are read only after {@link #allow} has validated the command line.
 */
public final class Args {
  private final Map<String, List<String>> values = new LinkedHashMap<>();
  private final Set<String> flags;
  private final String command;
  private final String[] argv;
  private CommandLine.Model.CommandSpec spec;

  /** flags: option names that take no value. */
  public Args(String command, String[] argv, Set<String> flags) {
    this.command = command;
    this.flags = flags;
    this.argv = argv.clone();
  }

  /**
   * Parses against the allowed options and the flags. Fails on an option not among them, naming
   * the nearest known option; then on a missing value or a stray argument.
   */
  public Args allow(Set<String> allowed) {
    List<String> known = new ArrayList<>(new TreeSet<>(allowed));
    known.addAll(new TreeSet<>(flags));
    // unknown options first: a typo'd flag followed by a value would otherwise read as a stray argument
    for (String a : argv) {
      if (a.startsWith("--")) {
        String k = a.substring(2).split("=", 2)[0];
        if (!known.contains(k)) {
          String near = Nearest.of(k, known);
          throw new UsageException(command + ": unknown option --" + k
              + (near == null ? "" : " (did you mean --" + near + "?)"));
        }
      }
    }
    spec = spec(command, allowed, flags);
    CommandLine.ParseResult r;
    try {
      r = new CommandLine(spec).parseArgs(argv);
    } catch (CommandLine.MissingParameterException e) {
      String name = e.getMissing().isEmpty() ? "" : " " + e.getMissing().get(0).paramLabel();
      throw new UsageException(command + ": option" + name + " needs a value");
    } catch (CommandLine.ParameterException e) {
      throw new UsageException(command + ": " + e.getMessage());
    }
    if (!r.unmatched().isEmpty()) {
      throw new UsageException(command + ": unexpected argument '" + r.unmatched().get(0) + "'");
    }
    for (CommandLine.Model.OptionSpec o : r.matchedOptions()) {
      values.put(o.longestName().substring(2), new ArrayList<>(o.<List<String>>getValue()));
    }
    return this;
  }

  /** picocli's model of the command: each option a repeatable string; a flag's bare form means true. */
  static CommandLine.Model.CommandSpec spec(String command, Set<String> allowed, Set<String> flags) {
    CommandLine.Model.CommandSpec s = CommandLine.Model.CommandSpec.create().name(command);
    s.parser().unmatchedArgumentsAllowed(true).unmatchedOptionsAllowedAsOptionParameters(false);
    for (String k : new TreeSet<>(allowed)) {
      if (!flags.contains(k)) {
        s.addOption(CommandLine.Model.OptionSpec.builder("--" + k).arity("1").type(List.class)
            .auxiliaryTypes(String.class).paramLabel("--" + k).build());
      }
    }
    for (String f : new TreeSet<>(flags)) {
      s.addOption(CommandLine.Model.OptionSpec.builder("--" + f).arity("0..1").type(List.class)
          .auxiliaryTypes(String.class).fallbackValue("true").paramLabel("--" + f).build());
    }
    return s;
  }

  /** picocli's usage text of the options (after {@link #allow}). */
  public String usage() {
    complete();
    return new CommandLine(spec).getUsageMessage(CommandLine.Help.Ansi.OFF);
  }

  /** Reading before allow() would read an unvalidated command line. */
  private void complete() {
    if (spec == null) {
      throw new UsageException(command + ": options read before they were validated (call allow)");
    }
  }

  public boolean has(String key) {
    complete();
    return values.containsKey(key);
  }

  public boolean flag(String key) {
    complete();
    return values.containsKey(key) && !values.get(key).get(0).equals("false");
  }

  public String str(String key, String dflt) {
    complete();
    List<String> v = values.get(key);
    return v == null ? dflt : v.get(v.size() - 1);
  }

  public String need(String key) {
    String v = str(key, null);
    if (v == null) {
      throw new UsageException(command + ": missing required option --" + key);
    }
    return v;
  }

  public List<String> all(String key) {
    complete();
    return values.getOrDefault(key, List.of());
  }

  public Path path(String key) {
    return Path.of(need(key));
  }

  public int integer(String key, int dflt) {
    String v = str(key, null);
    try {
      return v == null ? dflt : Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new UsageException(command + ": --" + key + " must be an integer, got '" + v + "'");
    }
  }

  public double number(String key, double dflt) {
    String v = str(key, null);
    try {
      return v == null ? dflt : Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new UsageException(command + ": --" + key + " must be a number, got '" + v + "'");
    }
  }

  /** A usage error: printed without a stack trace, exit code 2. */
  public static final class UsageException extends RuntimeException {
    public UsageException(String msg) {
      super(msg);
    }
  }
}
