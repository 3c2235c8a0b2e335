package ai.lathe.model.eval;

/**
 * The pairwise judge's prompt: a user turn built from a template with {question}, {answer_a} and
 * {answer_b}, and the start of the judge's reply (verdictPrefix) after which the next token is
 * read: labelA or labelB. The shipped default follows the form of MT-Bench's pairwise judge (an
 * impartial comparison of two replies to one question, order and length not to sway it, the
 * verdict in double brackets), written for Lathe.
 */
public record JudgePrompt(String template, String verdictPrefix, String labelA, String labelB) {
  public static final String DEFAULT_TEMPLATE = """
      You are a fair referee. Two AI assistants have each replied to the same user request, shown \
      below. Decide which reply serves the user better. Weigh how helpful, correct, relevant, \
      thorough and clear each reply is. Neither the order in which the replies are shown, nor their \
      length, nor the assistants' names may influence you; be as objective as you can. Answer with \
      your verdict only, exactly "[[A]]" when assistant A's reply is better or "[[B]]" when \
      assistant B's reply is better.

      [User request]
      {question}

      [Reply of assistant A]
      {answer_a}
      [End of assistant A's reply]

      [Reply of assistant B]
      {answer_b}
      [End of assistant B's reply]""";

  public static final JudgePrompt DEFAULT = new JudgePrompt(DEFAULT_TEMPLATE, "[[", "A", "B");

  public JudgePrompt {
    for (String p : new String[] {"{question}", "{answer_a}", "{answer_b}"}) {
      if (template == null || !template.contains(p)) {
        throw new IllegalArgumentException("judge prompt template lacks the placeholder " + p);
      }
    }
    if (verdictPrefix == null) {
      verdictPrefix = "";
    }
    if (labelA == null || labelB == null || labelA.isEmpty() || labelB.isEmpty() || labelA.equals(labelB)) {
      throw new IllegalArgumentException("judge labels must be two different non-empty strings, got '" + labelA
          + "' and '" + labelB + "'");
    }
  }

  /**
   * The user turn: each placeholder replaced once, in one pass (an answer that itself contains
   * "{answer_b}" stays as written).
   */
  public String render(String question, String answerA, String answerB) {
    StringBuilder sb = new StringBuilder();
    int i = 0;
    while (i < template.length()) {
      if (template.startsWith("{question}", i)) {
        sb.append(question);
        i += "{question}".length();
      } else if (template.startsWith("{answer_a}", i)) {
        sb.append(answerA);
        i += "{answer_a}".length();
      } else if (template.startsWith("{answer_b}", i)) {
        sb.append(answerB);
        i += "{answer_b}".length();
      } else {
        sb.append(template.charAt(i++));
      }
    }
    return sb.toString();
  }
}
