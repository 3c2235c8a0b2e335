package ai.lathe.model;

/**
 * Llama 3's rotary frequency scaling ({@code rope_type: llama3}), as transformers'
 * {@code _compute_llama3_parameters}: with wavelength λ = 2π/f of each base frequency f,
 * λ &lt; original/high_freq_factor keeps f, λ &gt; original/low_freq_factor uses f/factor, and the band
 * between blends the two with s = (original/λ − low)/(high − low): (1−s)·f/factor + s·f.
 */
public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor,
    int originalMaxPositionEmbeddings) implements java.io.Serializable {

  public RopeScaling {
    if (!(factor > 0) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor)
        || originalMaxPositionEmbeddings <= 0) {
      throw new IllegalArgumentException("invalid llama3 rope_scaling: factor " + factor + ", low_freq_factor "
          + lowFreqFactor + ", high_freq_factor " + highFreqFactor + " (must exceed low_freq_factor), "
          + "original_max_position_embeddings " + originalMaxPositionEmbeddings);
    }
  }

  /** Llama 3.1's values. */
  public static RopeScaling llama31() {
    return new RopeScaling(8.0, 1.0, 4.0, 8192);
  }

  /** The scaled inverse frequency of a base inverse frequency, in float as transformers computes it. */
  public float scale(float invFreq) {
    double wavelen = 2 * Math.PI / invFreq;
    double lowWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
    double highWavelen = originalMaxPositionEmbeddings / highFreqFactor;
    if (wavelen < highWavelen) {
      return invFreq;
    }
    if (wavelen > lowWavelen) {
      return (float) (invFreq / factor);
    }
    double s = (originalMaxPositionEmbeddings / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (float) ((1 - s) * invFreq / factor + s * invFreq);
  }
}
