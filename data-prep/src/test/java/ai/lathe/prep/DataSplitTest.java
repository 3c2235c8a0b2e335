package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.text.DataSplit;
import ai.lathe.model.text.Examples;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** sft-local splits a row as prep does: both from the normalised content id. */
class DataSplitTest {
  @Test
  void sftLocalKeyEqualsPrepsContentId() throws Exception {
    ObjectMapper om = new ObjectMapper();
    int validation = 0;
    for (int i = 0; i < 200; i++) {
      // different ids and languages, unnormalised whitespace: neither may change the split
      JsonNode row = om.readTree("{\"lang\":\"" + (i % 2 == 0 ? "en" : "de") + "\",\"id\":\"x" + i + "\","
          + "\"instruction\":\"  Question " + i + "\\r\\n\\n\\n\\nmore \",\"input\":\"\",\"output\":\"Answer " + i + "\"}");
      RowTransforms.Clean prep = RowTransforms.clean(row, RowFuzzTest.options("alpaca"));
      String local = DataSplit.normalizedContentId(Examples.toMessages(row, "alpaca", null));
      assertEquals(prep.id(), local, "row " + i);
      assertEquals(RowTransforms.split(prep.id(), 0.3), DataSplit.split(local, 0.3));
      validation += DataSplit.split(local, 0.3).equals(DataSplit.VALIDATION) ? 1 : 0;
    }
    assertTrue(validation > 40 && validation < 80, validation + " of 200 in validation at 0.3");
  }
}
