package ai.lathe.model.config;

import java.util.List;

/**
 * One documented configuration key: its full dotted path, its default as written in the
 * reference, a one-line description and, for an enumerated setting, the values it allows (empty:
 * any). A {@link Kind#MAP} key holds free keys (PEFT patterns, renames, another job's overrides)
 * that are not checked; a key like {@code adapters[].path} names a field of the objects listed
 * under {@code adapters}. The allowed values are the one list the key check (Config.validate),
 * the README's reference and the tests read.
 */
public record KeySpec(String key, String dflt, String doc, Kind kind, List<String> allowed) {
  /** What the value is, for checking what lies inside it. */
  public enum Kind { VALUE, MAP }

  public KeySpec(String key, String dflt, String doc, Kind kind) {
    this(key, dflt, doc, kind, List.of());
  }

  public KeySpec {
    if (key == null || !key.matches("[a-z0-9_]+(\\[\\])?(\\.[a-z0-9_]+(\\[\\])?)*")) {
      throw new IllegalArgumentException("bad config key '" + key + "'");
    }
    if (doc == null || doc.isBlank() || doc.contains("\n")) {
      throw new IllegalArgumentException(key + ": needs a one-line description");
    }
    dflt = dflt == null ? "" : dflt;
    allowed = allowed == null ? List.of() : List.copyOf(allowed);
    if (!allowed.isEmpty() && kind != Kind.VALUE) {
      throw new IllegalArgumentException(key + ": only a value key can list allowed values");
    }
    for (String a : allowed) {
      if (a.isBlank()) {
        throw new IllegalArgumentException(key + ": blank allowed value");
      }
    }
    // a literal default must itself be allowed; "(...)" describes a computed one
    if (!allowed.isEmpty() && !dflt.isEmpty() && !dflt.startsWith("(") && !allowed.contains(dflt)) {
      throw new IllegalArgumentException(key + ": default '" + dflt + "' is not among " + allowed);
    }
  }

  /** This key restricted to the given values (an enumerated setting). */
  public KeySpec oneOf(String... values) {
    return oneOf(List.of(values));
  }

  public KeySpec oneOf(List<String> values) {
    return new KeySpec(key, dflt, doc, kind, values);
  }

  /** Whether v is a value this key accepts (any value when it lists none; exact, case-sensitive). */
  public boolean accepts(String v) {
    return allowed.isEmpty() || allowed.contains(v);
  }

  public static KeySpec of(String key, Object dflt, String doc) {
    return new KeySpec(key, render(dflt), doc, Kind.VALUE);
  }

  public static KeySpec map(String key, String doc) {
    return new KeySpec(key, "{}", doc, Kind.MAP);
  }

  /** A required key: no default. */
  public static KeySpec required(String key, String doc) {
    return new KeySpec(key, REQUIRED, doc, Kind.VALUE);
  }

  public static final String REQUIRED = "(required)";

  /**
   * How a default value reads in the reference and in YAML: numbers in their shortest plain
   * form (2.0E-4 as 2e-4, 1.0 as 1.0), lists as [a, b]; a string in parentheses describes a
   * computed default.
   */
  public static String render(Object v) {
    if (v instanceof Double d) {
      if (d.isInfinite()) {
        return d > 0 ? ".inf" : "-.inf";
      }
      if (d != 0 && (Math.abs(d) < 1e-3 || Math.abs(d) >= 1e7)) {
        String s = String.format("%.6e", d).replaceAll("0+e", "e").replace(".e", "e").replace("e-0", "e-")
            .replace("e+0", "e").replace("e+", "e");
        return s;
      }
      return Double.toString(d);
    }
    if (v instanceof List<?> l) {
      return l.toString();
    }
    return String.valueOf(v);
  }
}
