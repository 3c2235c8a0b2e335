package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.text.ChatTemplate.Message;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A prompt's rows share one split: KTO's desirable and undesirable completions of a prompt (and
 * every preference pair of a prompt) are all train or all validation, so training on one of them
 * cannot move the held-out metrics of another.
 */
class PreferenceSplitTest {
  @Test
  void completionsOfOnePromptLandInOneSplit() {
    int validation = 0;
    for (int i = 0; i < 400; i++) {
      List<Message> prompt = List.of(new Message("user", "question " + i));
      var good = new PreferenceRows.Labeled("a" + i, "", "en", prompt, "the answer " + i, true);
      var bad = new PreferenceRows.Labeled("b" + i, "", "en", prompt, "answer the " + i, false);
      var pair = new PreferenceRows.Pair("c" + i, "", "en", prompt, "the answer " + i, "answer the " + i, false);
      assertEquals(good.split(0.3), bad.split(0.3), "prompt " + i);
      assertEquals(good.split(0.3), pair.split(0.3), "prompt " + i);
      validation += good.split(0.3).equals("validation") ? 1 : 0;
    }
    // the split still follows val_fraction (by the prompt's hash)
    assertTrue(validation > 90 && validation < 150, "validation prompts: " + validation);
  }
}
