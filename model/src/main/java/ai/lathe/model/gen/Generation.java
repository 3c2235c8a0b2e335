package ai.lathe.model.gen;

/** tokens = the new tokens only; finishReason "stop" (a stop id or string) or "length". */
public record Generation(int[] tokens, String finishReason) {
  public static final String STOP = "stop";
  public static final String LENGTH = "length";

  public Generation {
    if (!STOP.equals(finishReason) && !LENGTH.equals(finishReason)) {
      throw new IllegalArgumentException("finish_reason must be stop or length, got " + finishReason);
    }
    tokens = tokens.clone();
  }
}
