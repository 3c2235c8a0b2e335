package ai.lathe.model;

/**
 * A model folder's config.json asks for what Lathe does not implement, or gives a malformed value:
 * bad input, so the commands exit 2 (as for an unknown key) with one line naming the file and the
 * key. Thrown for every refused setting (model_type, biases, activation, rope_scaling, ...) and for
 * a missing or malformed required field. An IllegalArgumentException, so every catch that reports a
 * diagnosis still sees one.
 */
public final class ConfigJsonRefusal extends IllegalArgumentException {
  /** The exit code of bad input. */
  public static final int EXIT = 2;

  public ConfigJsonRefusal(String msg) {
    super(msg);
  }

  /** EXIT when a refusal of config.json is among e's causes (e included), else the given code. */
  public static int exitCode(Throwable e, int otherwise) {
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof ConfigJsonRefusal) {
        return EXIT;
      }
    }
    return otherwise;
  }
}
