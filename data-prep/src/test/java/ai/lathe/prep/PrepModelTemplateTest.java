package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.lathe.model.Config;
import ai.lathe.model.text.HfTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Prep with the model's own chat template (Llama 3.1's tokenizer_config.json). */
class PrepModelTemplateTest extends SparkTestBase {
  static final String LLAMA31 = "target/tokenizers/llama3_1";

  // written from reading Llama 3.1's shipped chat_template: bos_token, then per message a header,
  // a blank line, the trimmed content and <|eot_id|>
  static final String TEXT = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
      + "<|start_header_id|>user<|end_header_id|>\n\nWhat is apt?<|eot_id|>"
      + "<|start_header_id|>assistant<|end_header_id|>\n\nDebian's package tool.<|eot_id|>"
      + "<|start_header_id|>user<|end_header_id|>\n\nAnd dpkg?<|eot_id|>"
      + "<|start_header_id|>assistant<|end_header_id|>\n\nThe low-level one.<|eot_id|>";

  @Test
  void modelTemplateGivesItsTextAndMasksAssistantTurnsOnly(@TempDir Path tmp) throws Exception {
    Path in = tmp.resolve("chat.jsonl");
    Files.writeString(in, "{\"lang\": \"en\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
        + " {\"role\": \"user\", \"content\": \"What is apt?\"}, {\"role\": \"assistant\", \"content\": \"Debian's package tool.\"},"
        + " {\"role\": \"user\", \"content\": \"And dpkg?\"}, {\"role\": \"assistant\", \"content\": \"The low-level one.\"}]}\n");
    for (String template : new String[] {"template=model", null}) { // null: the default, from tokenizer_config
      Path out = tmp.resolve(template == null ? "default" : "model");
      List<String> sets = new ArrayList<>(List.of("input=" + in, "output=" + out, "tokenizer=" + LLAMA31,
          "format=messages", "max_length=256", "val_fraction=0"));
      if (template != null) {
        sets.add(template);
      }
      PrepJob.run(spark, Config.load(null, sets));
      List<Row> rows = spark.read().parquet(out.resolve("data").toString()).collectAsList();
      assertEquals(1, rows.size());
      List<Integer> ids = rows.get(0).getList(rows.get(0).fieldIndex("input_ids"));
      List<Boolean> mask = rows.get(0).getList(rows.get(0).fieldIndex("loss_mask"));
      try (HfTokenizer tok = HfTokenizer.open(Path.of(LLAMA31))) {
        int[] a = ids.stream().mapToInt(Integer::intValue).toArray();
        assertEquals(TEXT, tok.decode(a));
        assertEquals(1, ids.stream().filter(i -> i == 128000).count(), "one BOS");
        List<String> runs = new ArrayList<>();
        for (int i = 0; i < a.length; i++) {
          if (mask.get(i) && (i == 0 || !mask.get(i - 1))) {
            int j = i;
            while (j < a.length && mask.get(j)) {
              j++;
            }
            runs.add(tok.decode(java.util.Arrays.copyOfRange(a, i, j)));
          }
        }
        assertEquals(List.of("Debian's package tool.<|eot_id|>", "The low-level one.<|eot_id|>"), runs, String.valueOf(template));
      }
    }
  }
}
