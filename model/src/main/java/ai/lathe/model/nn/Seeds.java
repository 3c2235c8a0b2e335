package ai.lathe.model.nn;

/**
 * Seeds of independent random streams derived from a parent seed and a key (a row, a layer, a
 * projection). Adding small offsets to a seed is not enough: {@code SplittableRandom(s)} draws
 * mix(s + γ), mix(s + 2γ), ... so seeds that differ by γ (or by γ·k) give one stream shifted by k
 * elements. A derived seed therefore goes through a 64-bit finaliser, which spreads every input bit
 * over every output bit, so parents or keys that differ by one give unrelated seeds.
 */
public final class Seeds {
  private Seeds() {}

  /** The seed of key's stream under parent: mix64(mix64(parent) + key). */
  public static long derive(long parent, long key) {
    return mix64(mix64(parent) + key);
  }

  /**
   * SplitMix64's output finaliser (Steele, Lea and Flood 2014, Stafford's "Mix13" constants): a
   * bijection on 64-bit values, z ^= z >>> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >>> 27;
   * z *= 0x94d049bb133111eb; z ^= z >>> 31.
   */
  public static long mix64(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }
}
