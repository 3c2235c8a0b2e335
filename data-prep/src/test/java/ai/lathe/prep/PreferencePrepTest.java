package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.text.HfTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PreferencePrepTest extends SparkTestBase {
  static final String TOK = PrepJobTest.TOKENIZER;

  static Config cfg(String input, Path out, String... sets) throws Exception {
    List<String> all = new java.util.ArrayList<>(List.of("input=" + input, "output=" + out, "tokenizer=" + TOK,
        "template=llama2", "max_length=256", "max_reject_fraction=1.0"));
    all.addAll(List.of(sets));
    return Config.load(null, all);
  }

  @Test
  void explicitImplicitAndBadPairs(@TempDir Path tmp) throws Exception {
    Path in = tmp.resolve("pairs.jsonl");
    Files.writeString(in, String.join("\n",
        "{\"prompt\": \"What is Debian?\", \"chosen\": \"A free OS.\", \"rejected\": \"A fruit.\", \"lang\": \"en\"}",
        "{\"chosen\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}],"
            + " \"rejected\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Go away.\"}]}",
        "{\"prompt\": \"Same?\", \"chosen\": \"yes\", \"rejected\": \"yes\"}",
        "{\"chosen\": [{\"role\": \"user\", \"content\": \"A\"}, {\"role\": \"assistant\", \"content\": \"x\"}],"
            + " \"rejected\": [{\"role\": \"user\", \"content\": \"B\"}, {\"role\": \"assistant\", \"content\": \"y\"}]}",
        "{\"prompt\": \"no rejected\", \"chosen\": \"c\"}") + "\n");
    PrepJob.Result r = PrepJob.run(spark, cfg(in.toString(), tmp.resolve("out"), "format=preference"));
    assertEquals(3, r.rejected(), r.rejectReasons().toString());
    assertTrue(r.rejectReasons().keySet().containsAll(List.of("chosen equals rejected")), r.rejectReasons().toString());
    List<Row> rows = spark.read().parquet(tmp.resolve("out/data").toString()).collectAsList();
    assertEquals(2, rows.size());
    try (HfTokenizer tok = HfTokenizer.open(Path.of(TOK))) {
      for (Row row : rows) {
        List<Integer> c = row.getList(row.fieldIndex("chosen_ids"));
        List<Integer> j = row.getList(row.fieldIndex("rejected_ids"));
        int cs = row.getInt(row.fieldIndex("chosen_start"));
        int rs = row.getInt(row.fieldIndex("rejected_start"));
        assertEquals(c.subList(0, cs), j.subList(0, rs), "chosen and rejected share the prompt tokens");
        String chosen = tok.decode(c.subList(cs, c.size()).stream().mapToInt(Integer::intValue).toArray());
        assertTrue(chosen.contains("free OS") || chosen.contains("Hello"), chosen);
      }
    }
    var m = new ObjectMapper().readTree(tmp.resolve("out/manifest.json").toFile());
    assertEquals("preference", m.path("kind").asText());
    assertTrue(!m.path("constructed_pairs").asBoolean());
  }

  @Test
  void pairsFromInstructionsAreDeterministicAndStayWithinALanguage(@TempDir Path tmp) throws Exception {
    PrepJob.Result a = PrepJob.run(spark, cfg(PrepJobTest.SAMPLE, tmp.resolve("a"), "format=alpaca", "kind=preference"));
    PrepJob.run(spark, cfg(PrepJobTest.SAMPLE, tmp.resolve("b"), "format=alpaca", "kind=preference"));
    List<String> ra = spark.read().parquet(tmp.resolve("a/data").toString()).collectAsList().stream()
        .map(Row::toString).sorted().collect(Collectors.toList());
    List<String> rb = spark.read().parquet(tmp.resolve("b/data").toString()).collectAsList().stream()
        .map(Row::toString).sorted().collect(Collectors.toList());
    assertEquals(ra, rb);
    assertTrue(ra.size() > 600, "pairs: " + ra.size());
    assertEquals(6, a.rows().keySet().stream().map(k -> k.split("/")[0]).distinct().count());
    var m = new ObjectMapper().readTree(tmp.resolve("a/manifest.json").toFile());
    assertTrue(m.path("constructed_pairs").asBoolean());
    List<Row> rows = spark.read().parquet(tmp.resolve("a/data").toString()).where("lang = 'de'").limit(3).collectAsList();
    try (HfTokenizer tok = HfTokenizer.open(Path.of(TOK))) {
      for (Row row : rows) {
        assertTrue(row.getBoolean(row.fieldIndex("constructed")));
        List<Integer> j = row.getList(row.fieldIndex("rejected_ids"));
        String rejected = tok.decode(j.subList(row.getInt(row.fieldIndex("rejected_start")), j.size()).stream()
            .mapToInt(Integer::intValue).toArray());
        assertTrue(!rejected.isBlank());
      }
    }
  }

  @Test
  void ktoRowsNeedABooleanLabel(@TempDir Path tmp) throws Exception {
    Path in = tmp.resolve("kto.jsonl");
    Files.writeString(in, "{\"prompt\": \"2+2?\", \"completion\": \"4\", \"label\": true}\n"
        + "{\"prompt\": \"2+2?\", \"completion\": \"5\", \"label\": false}\n"
        + "{\"prompt\": \"2+2?\", \"completion\": \"22\", \"label\": \"maybe\"}\n");
    PrepJob.Result r = PrepJob.run(spark, cfg(in.toString(), tmp.resolve("k"), "format=kto"));
    assertEquals(1, r.rejected());
    List<Row> rows = spark.read().parquet(tmp.resolve("k/data").toString()).collectAsList();
    assertEquals(2, rows.size());
    assertEquals(1, rows.stream().filter(x -> x.getBoolean(x.fieldIndex("label"))).count());
  }
}
