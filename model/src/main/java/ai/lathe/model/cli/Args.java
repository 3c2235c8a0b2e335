package ai.lathe.model.cli;

import ai.lathe.model.config.Nearest;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Minimal GNU-style options: --key value, --key=value and bare --flag; repeated keys are kept. An
 * empty value ({@code --key=} or {@code --key ""}) resets the option to its default, as if it were
 * not given (the rule of Config's {@code --set key=}).
 */
public final class Args {
  private final Map<String, List<String>> values = new LinkedHashMap<>();
  private final Set<String> flags;
  private final String command;
  /** An option without its value: reported after unknown options (a typo'd flag looks like one). */
  private String missingValue;

  /** flags: option names that take no value. */
  public Args(String command, String[] argv, Set<String> flags) {
    this.command = command;
    this.flags = flags;
    for (int i = 0; i < argv.length; i++) {
      String a = argv[i];
      if (!a.startsWith("--")) {
        throw new UsageException(command + ": unexpected argument '" + a + "'");
      }
      String key = a.substring(2);
      String val;
      int eq = key.indexOf('=');
      if (eq >= 0) {
        val = key.substring(eq + 1);
        key = key.substring(0, eq);
      } else if (flags.contains(key)) {
        val = "true";
      } else {
        if (i + 1 >= argv.length || argv[i + 1].startsWith("--")) {
          missingValue = missingValue != null ? missingValue : command + ": option --" + key + " needs a value";
          values.computeIfAbsent(key, k -> new ArrayList<>());
          continue;
        }
        val = argv[++i];
      }
      values.computeIfAbsent(key, k -> new ArrayList<>()).add(val);
    }
  }

  /** Fails on options not in the allowed set (or the flags), naming the nearest known option. */
  public Args allow(Set<String> allowed) {
    for (String k : values.keySet()) {
      if (!allowed.contains(k) && !flags.contains(k)) {
        List<String> known = new ArrayList<>(new TreeSet<>(allowed));
        known.addAll(new TreeSet<>(flags));
        String near = Nearest.of(k, known);
        throw new UsageException(command + ": unknown option --" + k
            + (near == null ? "" : " (did you mean --" + near + "?)"));
      }
    }
    complete();
    return this;
  }

  private void complete() {
    if (missingValue != null) {
      throw new UsageException(missingValue);
    }
  }

  /** The option's last value; null when not given or reset by an empty value. */
  private String last(String key) {
    complete();
    List<String> v = values.get(key);
    String s = v == null || v.isEmpty() ? null : v.get(v.size() - 1);
    return s == null || s.isEmpty() ? null : s;
  }

  public boolean has(String key) {
    return last(key) != null;
  }

  public boolean flag(String key) {
    String v = last(key);
    return v != null && !v.equals("false");
  }

  public String str(String key, String dflt) {
    String v = last(key);
    return v == null ? dflt : v;
  }

  public String need(String key) {
    String v = str(key, null);
    if (v == null) {
      List<String> given = values.get(key);
      throw new UsageException(command + ": missing required option --" + key
          + (given != null && !given.isEmpty() ? " (an empty value resets it, and it has no default)" : ""));
    }
    return v;
  }

  /**
   * An enumerated option: its value (dflt when not given) must be one of allowed, exactly; else
   * one line (exit 2) naming the option, the value, the allowed values and the nearest.
   */
  public String choice(String key, String dflt, List<String> allowed) {
    String v = str(key, dflt);
    if (v != null && !allowed.contains(v)) {
      throw new ai.lathe.model.Config.BadValue(command + ": --" + key + " cannot be '" + v + "'; allowed: "
          + String.join(", ", allowed) + " (did you mean '" + Nearest.of(v, allowed) + "'?)");
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
  public static class UsageException extends RuntimeException {
    public UsageException(String msg) {
      super(msg);
    }
  }
}
