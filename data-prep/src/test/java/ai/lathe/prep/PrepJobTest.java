package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.Faults;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PrepJobTest extends SparkTestBase {
  static final String SAMPLE = "../data/sample/debian-faq/instructions.jsonl";
  static final String TOKENIZER = "../data/tokenizer/llama2/tokenizer.json";

  static Config config(String input, Path out, String... sets) throws Exception {
    List<String> all = new java.util.ArrayList<>(List.of("input=" + input, "output=" + out, "tokenizer=" + TOKENIZER,
        "format=alpaca", "template=llama2", "max_length=256"));
    all.addAll(List.of(sets));
    return Config.load(null, all);
  }

  static List<String> rows(Path out) {
    return spark.read().parquet(out.resolve("data").toString()).collectAsList().stream()
        .map(Row::toString).sorted().collect(Collectors.toList());
  }

  @Test
  void sampleDataCountsAddUpAndRerunsAreIdentical(@TempDir Path tmp) throws Exception {
    PrepJob.Result r = PrepJob.run(spark, config(SAMPLE, tmp.resolve("a")));
    JsonNode m = new ObjectMapper().readTree(tmp.resolve("a/manifest.json").toFile());
    assertEquals(666, r.inputRows());
    long out = m.path("counts").path("output_rows").asLong();
    assertEquals(r.inputRows() - r.rejected() - r.duplicates(), out);
    assertEquals(6, r.rows().keySet().stream().map(k -> k.split("/")[0]).distinct().count(), r.rows().toString());
    assertTrue(r.rows().getOrDefault("en/validation", 0L) > 0 && r.rows().get("en/train") > 50);
    assertEquals(out, spark.read().parquet(tmp.resolve("a/data").toString()).count());
    assertTrue(Files.exists(tmp.resolve("a/_SUCCESS")));
    assertEquals(Schemas.SFT_SCHEMA_VERSION, m.path("schema_version").asInt());
    assertEquals(64, m.path("tokenizer_sha256").asText().length());
    PrepJob.run(spark, config(SAMPLE, tmp.resolve("b")));
    assertEquals(rows(tmp.resolve("a")), rows(tmp.resolve("b")));
  }

  @Test
  void malformedRowsAreRejectedWithReasons(@TempDir Path tmp) throws Exception {
    Path in = tmp.resolve("bad.jsonl");
    String mb = "x".repeat(1_100_000);
    try (var os = Files.newOutputStream(in)) {
      os.write(("{\"instruction\": \"ok\", \"output\": \"fine\", \"lang\": \"en\"}\n"
          + "{\"instruction\": \"no output\"}\n"
          + "{\"instruction\": 5, \"output\": \"x\"}\n"
          + "{\"instruction\": \"empty\", \"output\": \"   \"}\n"
          + "not json at all\n"
          + "{\"instruction\": \"huge\", \"output\": \"" + mb + "\"}\n"
          + "{\"instruction\": null, \"output\": \"x\"}\n"
          + "{\"instruction\": \"ok\", \"output\": \"fine\", \"lang\": \"en\"}\n").getBytes(StandardCharsets.UTF_8));
      os.write(new byte[] {'{', '"', 'i', 'n', 's', 't', 'r', 'u', 'c', 't', 'i', 'o', 'n', '"', ':', '"', (byte) 0xC3,
          (byte) 0x28, '"', ',', '"', 'o', 'u', 't', 'p', 'u', 't', '"', ':', '"', 'y', '"', '}', '\n'});
    }
    Path msgs = tmp.resolve("msgs.jsonl");
    Files.writeString(msgs, "{\"messages\": [{\"role\": \"user\", \"content\": null}]}\n"
        + "{\"messages\": [null]}\n"
        + "{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]}\n"
        + "{\"messages\": [{\"role\": \"user\", \"content\": \"Как дела?\"}, {\"role\": \"assistant\", \"content\": \"Хорошо\"}]}\n");
    PrepJob.Result r = PrepJob.run(spark, config(in.toString(), tmp.resolve("out"), "max_reject_fraction=1.0"));
    assertEquals(9, r.inputRows());
    assertEquals(1, r.duplicates());
    assertEquals(7, r.rejected(), r.rejectReasons().toString());
    List<Row> rej = spark.read().parquet(tmp.resolve("out/rejects").toString()).collectAsList();
    String reasons = rej.stream().map(x -> x.getLong(1) + ":" + x.getString(2)).sorted().collect(Collectors.joining("\n"));
    assertTrue(reasons.contains("2:missing field 'output'"), reasons);
    assertTrue(reasons.contains("3:field 'instruction' must be a string"), reasons);
    assertTrue(reasons.contains("4:field 'output' is empty"), reasons);
    assertTrue(reasons.contains("7:missing field 'instruction'"), reasons);
    assertTrue(reasons.contains("5:not valid JSON"), reasons);
    assertTrue(reasons.contains("6:row longer than max_chars"), reasons);
    assertTrue(reasons.contains("9:invalid UTF-8"), reasons);
    PrepJob.Result m = PrepJob.run(spark, config(msgs.toString(), tmp.resolve("m"), "format=messages",
        "max_reject_fraction=1.0"));
    assertEquals(3, m.rejected(), m.rejectReasons().toString());
    assertEquals(1L, m.rows().values().stream().mapToLong(Long::longValue).sum());
    assertTrue(m.rows().keySet().iterator().next().startsWith("ru/"), "Cyrillic detected: " + m.rows());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> PrepJob.run(spark, config(in.toString(), tmp.resolve("never"), "max_reject_fraction=0.2")));
    assertTrue(e.getMessage().contains("max_reject_fraction"), e.getMessage());
    assertTrue(!Files.exists(tmp.resolve("never")));
  }

  @Test
  void aFailedRunLeavesThePreviousOutputIntact(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("o");
    PrepJob.run(spark, config(SAMPLE, out, "max_length=128"));
    List<String> before = rows(out);
    String manifest = Files.readString(out.resolve("manifest.json"));
    try (AutoCloseable fail = Faults.install((point, a, b) -> {
      if (point.equals(Faults.PREP_BEFORE_COMMIT)) {
        throw new IllegalStateException("injected failure before commit (test)");
      }
    })) {
      assertThrows(IllegalStateException.class, () -> PrepJob.run(spark, config(SAMPLE, out, "max_length=64")));
    }
    assertEquals(before, rows(out));
    assertEquals(manifest, Files.readString(out.resolve("manifest.json")));
    assertEquals(1, Files.list(tmp).count(), "no temporary folder left behind");
  }

  @Test
  void otherScriptsSurviveTokenisation(@TempDir Path tmp) throws Exception {
    PrepJob.run(spark, config(SAMPLE, tmp.resolve("a"), "max_length=4096"));
    var tok = ai.lathe.model.text.HfTokenizer.open(Path.of(TOKENIZER));
    List<Row> zh = spark.read().parquet(tmp.resolve("a/data").toString()).where("lang = 'zh-cn'").limit(5).collectAsList();
    assertEquals(5, zh.size());
    for (Row r : zh) {
      PreparedRow p = Schemas.fromRow(r);
      String text = tok.decode(p.inputIds());
      assertTrue(text.codePoints().anyMatch(cp -> Character.UnicodeScript.of(cp) == Character.UnicodeScript.HAN), text);
      assertTrue(text.contains("[INST]") && text.contains("[/INST]"), text);
    }
  }

  @Test
  void nearDuplicatesAndReplay(@TempDir Path tmp) throws Exception {
    Path in = tmp.resolve("near.jsonl");
    String answer = "Debian is a free operating system for your computer, developed by volunteers around the world "
        + "and distributed with thousands of packages.";
    Files.writeString(in, "{\"instruction\": \"What is Debian?\", \"output\": \"" + answer + "\", \"lang\": \"en\"}\n"
        + "{\"instruction\": \"What is Debian?\", \"output\": \"" + answer.replace("thousands", "many thousands")
        + "\", \"lang\": \"en\"}\n"
        + "{\"instruction\": \"How do I install it?\", \"output\": \"Download an image and boot it.\", \"lang\": \"en\"}\n");
    PrepJob.Result off = PrepJob.run(spark, config(in.toString(), tmp.resolve("off")));
    assertEquals(0, off.nearDuplicates());
    PrepJob.Result on = PrepJob.run(spark, config(in.toString(), tmp.resolve("on"), "near_dedup.enabled=true",
        "near_dedup.threshold=0.8"));
    assertEquals(1, on.nearDuplicates());
    assertEquals(2, on.rows().values().stream().mapToLong(Long::longValue).sum());

    // replay: rows of another set mixed into train only, deterministically, ≈ fraction × train rows
    Path en = tmp.resolve("en.jsonl");
    Path general = tmp.resolve("general.jsonl");
    List<String> lines = Files.readAllLines(Path.of(SAMPLE));
    Files.write(en, lines.stream().filter(l -> l.contains("\"lang\": \"en\"")).toList());
    Files.write(general, lines.stream().filter(l -> l.contains("\"lang\": \"fr\"")).toList());
    PrepJob.Result r1 = PrepJob.run(spark, config(en.toString(), tmp.resolve("r1"), "replay.input=" + general,
        "replay.fraction=0.2"));
    long train = r1.rows().get("en/train");
    assertTrue(r1.replayRows() > 0.1 * train && r1.replayRows() < 0.3 * train, r1.replayRows() + " of " + train);
    assertEquals(r1.replayRows(), r1.rows().get("fr/train"));
    assertTrue(!r1.rows().containsKey("fr/validation"));
    PrepJob.run(spark, config(en.toString(), tmp.resolve("r2"), "replay.input=" + general, "replay.fraction=0.2"));
    assertEquals(rows(tmp.resolve("r1")), rows(tmp.resolve("r2")));
  }

  @Test
  void stagesRunOneByOneGiveTheSameRows(@TempDir Path tmp) throws Exception {
    PrepJob.run(spark, config(SAMPLE, tmp.resolve("all")));
    PrepJob.Result clean = PrepJob.run(spark, config(SAMPLE, tmp.resolve("clean"), "stage=clean"));
    assertEquals(662, clean.rows().values().stream().mapToLong(Long::longValue).sum());
    JsonNode cm = new ObjectMapper().readTree(tmp.resolve("clean/manifest.json").toFile());
    assertEquals("clean", cm.path("kind").asText());
    PrepJob.run(spark, config(tmp.resolve("clean").toString(), tmp.resolve("tok"), "stage=tokenize"));
    assertEquals(rows(tmp.resolve("all")), rows(tmp.resolve("tok")));
    // the tokenise stage alone, rerun with another max_length, needs no raw data
    PrepJob.Result shorter = PrepJob.run(spark, config(tmp.resolve("clean").toString(), tmp.resolve("tok64"),
        "stage=tokenize", "max_length=64"));
    assertTrue(shorter.truncated() > 0);
    var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> PrepJob.run(spark, config(tmp.resolve("all").toString(), tmp.resolve("x"), "stage=tokenize")));
    assertTrue(e.getMessage().contains("clean stage"), e.getMessage());
  }

  @Test
  void packingLaysExamplesEndToEnd(@TempDir Path tmp) throws Exception {
    PrepJob.Result plain = PrepJob.run(spark, config(SAMPLE, tmp.resolve("plain"), "max_length=256"));
    PrepJob.Result packed = PrepJob.run(spark, config(SAMPLE, tmp.resolve("packed"), "max_length=256", "packing=true"));
    long plainRows = plain.rows().values().stream().mapToLong(Long::longValue).sum();
    long packedRows = packed.rows().values().stream().mapToLong(Long::longValue).sum();
    assertTrue(packedRows < plainRows, packedRows + " < " + plainRows);
    List<PreparedRow> rows = spark.read().parquet(tmp.resolve("packed/data").toString()).collectAsList().stream()
        .map(Schemas::fromRow).toList();
    long examples = 0;
    long lossTokens = 0;
    for (PreparedRow r : rows) {
      assertTrue(r.numTokens() <= 256);
      for (int i = 0; i < r.numTokens(); i++) {
        examples += r.positionIds()[i] == 0 ? 1 : 0;
        assertTrue(i == 0 || r.positionIds()[i] == 0 || r.positionIds()[i] == r.positionIds()[i - 1] + 1);
      }
      lossTokens += r.numLossTokens();
    }
    assertEquals(plainRows, examples, "every example is in exactly one packed row");
    long plainLoss = spark.read().parquet(tmp.resolve("plain/data").toString()).collectAsList().stream()
        .mapToLong(r -> r.<Integer>getAs("num_loss_tokens")).sum();
    assertEquals(plainLoss, lossTokens);
  }
}
