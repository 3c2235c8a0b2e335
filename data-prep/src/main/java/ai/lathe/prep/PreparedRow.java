package ai.lathe.prep;

import java.io.Serializable;

/** One tokenised training example as stored in prepared Parquet (schema version 1). */
public record PreparedRow(
    String id, // content id (hash of normalised content)
    String sourceId, // the input row's own id, if any
    String lang,
    String split, // train | validation
    int[] inputIds,
    boolean[] lossMask, // true where the token is trained on (completion tokens)
    int numTokens,
    int numLossTokens,
    boolean truncated) implements Serializable {}
