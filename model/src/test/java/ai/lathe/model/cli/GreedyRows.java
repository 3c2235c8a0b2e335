package ai.lathe.model.cli;

import com.fasterxml.jackson.databind.JsonNode;

/** JSON helpers for the generation tests. */
final class GreedyRows {
  private GreedyRows() {}

  static int[] ints(JsonNode a) {
    int[] v = new int[a.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = a.get(i).asInt();
    }
    return v;
  }
}
