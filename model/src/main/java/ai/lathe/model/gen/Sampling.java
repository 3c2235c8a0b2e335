package ai.lathe.model.gen;

import java.util.List;

/**
 * How to pick each new token. maxNewTokens &gt;= 1; temperature 0 = greedy; topK 0 = off; topP 1 = off;
 * stopIds end a sequence (the id is kept in tokens); stopStrings end it when the decoded text contains one.
 * Filters apply in transformers' order: temperature, then top-k, then top-p.
 */
public record Sampling(int maxNewTokens, double temperature, int topK, double topP, int[] stopIds,
    List<String> stopStrings) {

  public Sampling {
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + maxNewTokens);
    }
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top_p must be in (0, 1] (1 = off), got " + topP);
    }
    stopIds = stopIds == null ? new int[0] : stopIds.clone();
    stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
    for (String s : stopStrings) {
      if (s.isEmpty()) {
        throw new IllegalArgumentException("a stop string must not be empty");
      }
    }
  }

  /** Greedy decoding of at most maxNewTokens, stopping at any of stopIds. */
  public static Sampling greedy(int maxNewTokens, int[] stopIds) {
    return new Sampling(maxNewTokens, 0.0, 0, 1.0, stopIds, List.of());
  }

  public boolean isGreedy() {
    return temperature == 0 || topK == 1;
  }

  boolean stopsAt(int id) {
    for (int s : stopIds) {
      if (s == id) {
        return true;
      }
    }
    return false;
  }
}
