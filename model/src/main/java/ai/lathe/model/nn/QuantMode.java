package ai.lathe.model.nn;

import ai.lathe.model.Config;

/**
 * How the frozen base's projections are held: dense, NF4, or NF4 with double-quantised block
 * scales. Read from a config's quantize (none | nf4) and double_quant keys; {@link #word} is the
 * one-word form recorded in manifests and fingerprints (none, nf4, nf4-dq).
 */
public enum QuantMode {
  NONE("none"), NF4("nf4"), NF4_DQ("nf4-dq");

  public final String word;

  QuantMode(String word) {
    this.word = word;
  }

  /** quantize must be none or nf4; double_quant needs nf4. Errors name the config's source. */
  public static QuantMode fromConfig(Config c) {
    String q = c.str("quantize", "none");
    boolean dq = c.bool("double_quant", false);
    if (!q.equals("none") && !q.equals("nf4")) {
      throw new IllegalArgumentException(c.source() + ": quantize must be none or nf4, got '" + q + "'");
    }
    if (dq && q.equals("none")) {
      throw new IllegalArgumentException(c.source() + ": double_quant needs quantize: nf4");
    }
    return q.equals("none") ? NONE : dq ? NF4_DQ : NF4;
  }

  /** The mode a one-word form names (none, nf4, nf4-dq). */
  public static QuantMode of(String word) {
    for (QuantMode m : values()) {
      if (m.word.equals(word)) {
        return m;
      }
    }
    throw new IllegalArgumentException("unknown quantisation '" + word + "' (none, nf4, nf4-dq)");
  }

  /** The quantize argument of the checkpoint loaders: none or nf4. */
  public String base() {
    return this == NONE ? "none" : "nf4";
  }

  public boolean doubleQuant() {
    return this == NF4_DQ;
  }
}
