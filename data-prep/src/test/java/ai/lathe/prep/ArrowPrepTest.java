package ai.lathe.prep;

import static ai.lathe.prep.ArrowFixtures.bool;
import static ai.lathe.prep.ArrowFixtures.int64;
import static ai.lathe.prep.ArrowFixtures.messages;
import static ai.lathe.prep.ArrowFixtures.row;
import static ai.lathe.prep.ArrowFixtures.turns;
import static ai.lathe.prep.ArrowFixtures.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Arrow and save_to_disk inputs give exactly the rows and rejects of their JSON-lines twins. */
class ArrowPrepTest extends SparkTestBase {
  static final Schema CHAT = new Schema(List.of(int64("id"), messages("messages"), utf8("lang")));

  static List<List<Map<String, Object>>> chatShards() {
    return List.of(
        List.of(row("id", 1L, "messages", turns("user", "Как дела?", "assistant", "Хорошо, спасибо."), "lang", "ru"),
            row("id", 2L, "messages", turns("user", "日本語で答えて", "assistant", "はい、どうぞ。"), "lang", null),
            row("id", 3L, "messages", turns("user", null, "assistant", "no question"), "lang", "en"),
            row("id", 4L, "messages", Arrays.asList((Object) null), "lang", "en"),
            row("id", 5L, "messages", null, "lang", "en")),
        List.of(row("id", 6L, "messages", turns("user", "What is apt?", "assistant", "Debian's package tool."),
                "lang", "en"),
            row("id", 7L, "messages", turns("user", "Как дела?", "assistant", "Хорошо, спасибо."), "lang", "ru"),
            row("id", 8L, "messages", turns("assistant", "first", "user", "second"), "lang", "en"),
            row("id", 9L, "messages", turns("user", "Écris « bonjour »", "assistant", "bonjour ✓"), "lang", "fr")));
  }

  static Config config(String input, Path out, String... sets) throws Exception {
    List<String> all = new ArrayList<>(List.of("input=" + input, "output=" + out, "tokenizer=" + PrepJobTest.TOKENIZER,
        "template=llama2", "max_length=256", "max_reject_fraction=1.0", "val_fraction=0.3"));
    all.addAll(List.of(sets));
    return Config.load(null, all);
  }

  static List<String> data(Path out) {
    return spark.read().parquet(out.resolve("data").toString()).collectAsList().stream().map(Row::toString).sorted()
        .toList();
  }

  /** Rejects with the file reduced to its name without extension: (file, line, reason, raw). */
  static List<String> rejects(Path out) {
    return spark.read().parquet(out.resolve("rejects").toString()).collectAsList().stream().map(r -> {
      String f = r.getString(0).substring(r.getString(0).lastIndexOf('/') + 1);
      return f.substring(0, f.lastIndexOf('.')) + "|" + r.getLong(1) + "|" + r.getString(2) + "|" + r.getString(3);
    }).sorted().toList();
  }

  @Test
  void aSaveToDiskFolderOfChatsGivesTheRowsAndRejectsOfItsJsonLinesTwin(@TempDir Path tmp) throws Exception {
    var shards = chatShards();
    ArrowFixtures.hfFolder(tmp.resolve("hf"), CHAT, shards);
    Files.createDirectories(tmp.resolve("twin"));
    for (int s = 0; s < shards.size(); s++) {
      ArrowFixtures.writeJsonl(tmp.resolve("twin").resolve(String.format("data-%05d-of-%05d.jsonl", s, shards.size())),
          shards.get(s));
    }
    PrepJob.Result a = PrepJob.run(spark, config(tmp.resolve("hf").toString(), tmp.resolve("a"),
        "input_type=hf-datasets", "format=messages"));
    PrepJob.Result b = PrepJob.run(spark, config(tmp.resolve("twin").toString(), tmp.resolve("b"), "format=messages"));
    assertEquals(9, a.inputRows());
    assertEquals(1, a.duplicates());
    assertEquals(4, a.rejected(), a.rejectReasons().toString());
    assertEquals(b.rows(), a.rows());
    assertEquals(b.rejectReasons(), a.rejectReasons());
    assertEquals(data(tmp.resolve("b")), data(tmp.resolve("a")));
    assertEquals(rejects(tmp.resolve("b")), rejects(tmp.resolve("a")));
    // the rejects name the Arrow shard and the row within it
    assertTrue(rejects(tmp.resolve("a")).stream().anyMatch(r -> r.startsWith("data-00001-of-00002|3|")),
        rejects(tmp.resolve("a")).toString());
    String manifest = Files.readString(tmp.resolve("a/manifest.json"));
    assertTrue(manifest.contains("data-00001-of-00002.arrow") && !manifest.contains("state.json"), manifest);
  }

  @Test
  void aSaveToDiskFolderOfPreferenceConversationsGivesTheRowsAndRejectsOfItsJsonLinesTwin(@TempDir Path tmp)
      throws Exception {
    // UltraFeedback / HH-RLHF style: chosen and rejected as whole conversations sharing a prompt
    Schema pref = new Schema(List.of(utf8("id"), messages("chosen"), messages("rejected"), utf8("lang")));
    var shards = List.of(
        List.of(row("id", "a", "chosen", turns("user", "Wie heißt du?", "assistant", "Ich heiße Lathe."),
                "rejected", turns("user", "Wie heißt du?", "assistant", "Keine Ahnung."), "lang", "de"),
            row("id", "b", "chosen", turns("user", "東京はどこ?", "assistant", "日本です。"),
                "rejected", turns("user", "東京はどこ?", "assistant", "知らない"), "lang", null),
            row("id", null, "chosen", turns("user", "x", "assistant", "same"),
                "rejected", turns("user", "x", "assistant", "same"), "lang", "en")),
        List.of(row("id", "d", "chosen", turns("user", "Q1", "assistant", "A1"),
                "rejected", turns("user", "Q2", "assistant", "A1'"), "lang", "en"),
            row("id", "e", "chosen", null, "rejected", turns("user", "q", "assistant", "r"), "lang", "en")),
        List.of(row("id", "f", "chosen", turns("user", "Ça va ?", "assistant", "Très bien ✓", "user", "Et toi ?",
                "assistant", "Aussi."), "rejected", turns("user", "Ça va ?", "assistant", "Très bien ✓", "user",
                "Et toi ?", "assistant", "Non."), "lang", "fr"),
            row("id", "g", "chosen", turns("user", null, "assistant", "a"), "rejected",
                turns("user", null, "assistant", "b"), "lang", "en"),
            row("id", "h", "chosen", Arrays.asList((Object) null), "rejected", turns("user", "q", "assistant", "r"),
                "lang", "en")));
    ArrowFixtures.hfFolder(tmp.resolve("hf"), pref, shards);
    Files.createDirectories(tmp.resolve("twin"));
    for (int s = 0; s < shards.size(); s++) {
      ArrowFixtures.writeJsonl(tmp.resolve("twin").resolve(String.format("data-%05d-of-%05d.jsonl", s, shards.size())),
          shards.get(s));
    }
    PrepJob.Result a = PrepJob.run(spark, config(tmp.resolve("hf").toString(), tmp.resolve("a"),
        "input_type=hf-datasets", "format=preference"));
    PrepJob.Result b = PrepJob.run(spark, config(tmp.resolve("twin").toString(), tmp.resolve("b"),
        "format=preference"));
    assertEquals(8, a.inputRows());
    assertEquals(3, a.rows().values().stream().mapToLong(Long::longValue).sum(), a.rows().toString());
    assertEquals(5, a.rejected(), a.rejectReasons().toString());
    assertEquals(b.rows(), a.rows());
    assertEquals(b.rejectReasons(), a.rejectReasons());
    assertEquals(data(tmp.resolve("b")), data(tmp.resolve("a")));
    assertEquals(rejects(tmp.resolve("b")), rejects(tmp.resolve("a")));
    assertTrue(rejects(tmp.resolve("a")).stream().anyMatch(r -> r.startsWith("data-00002-of-00003|2|")),
        rejects(tmp.resolve("a")).toString());
  }

  @Test
  void plainArrowFilesInStreamAndFileFormatReadEveryFormat(@TempDir Path tmp) throws Exception {
    Schema pref = new Schema(List.of(utf8("prompt"), utf8("chosen"), utf8("rejected")));
    List<Map<String, Object>> prefRows = List.of(row("prompt", "Name a Debian tool", "chosen", "apt", "rejected", "dunno"),
        row("prompt", "Größe?", "chosen", "groß", "rejected", null),
        row("prompt", "Same?", "chosen", "same", "rejected", "same"),
        row("prompt", "Quelle heure?", "chosen", "Midi.", "rejected", "Non."));
    Schema kto = new Schema(List.of(utf8("prompt"), utf8("completion"), bool("label")));
    List<Map<String, Object>> ktoRows = List.of(row("prompt", "2+2?", "completion", "4", "label", true),
        row("prompt", "2+2?", "completion", "5", "label", false), row("prompt", "x", "completion", "y", "label", null));
    Schema alpaca = new Schema(List.of(utf8("instruction"), utf8("input"), utf8("output"), int64("n")));
    List<Map<String, Object>> alpacaRows = List.of(row("instruction", "Say hi", "input", null, "output", "hi", "n", 1L),
        row("instruction", "Übersetze: cat", "input", "", "output", "Katze", "n", 2L),
        row("instruction", null, "input", "x", "output", "y", "n", 3L));
    Schema pc = new Schema(List.of(utf8("prompt"), utf8("completion")));
    List<Map<String, Object>> pcRows = List.of(row("prompt", "Hello", "completion", "World"),
        row("prompt", "", "completion", "empty prompt"));
    record Case(String format, Schema schema, List<Map<String, Object>> rows) {}
    for (Case c : List.of(new Case("preference", pref, prefRows), new Case("kto", kto, ktoRows),
        new Case("alpaca", alpaca, alpacaRows), new Case("prompt-completion", pc, pcRows))) {
      Path arrow = Files.createDirectories(tmp.resolve(c.format() + "-arrow"));
      Path twin = Files.createDirectories(tmp.resolve(c.format() + "-twin"));
      int half = c.rows().size() / 2;
      ArrowFixtures.write(arrow.resolve("part-0.arrow"), c.schema(), c.rows().subList(0, half), true, 1);
      ArrowFixtures.write(arrow.resolve("part-1.arrow"), c.schema(), c.rows().subList(half, c.rows().size()), false, 1);
      ArrowFixtures.writeJsonl(twin.resolve("part-0.jsonl"), c.rows().subList(0, half));
      ArrowFixtures.writeJsonl(twin.resolve("part-1.jsonl"), c.rows().subList(half, c.rows().size()));
      Path a = tmp.resolve(c.format() + "-a");
      Path b = tmp.resolve(c.format() + "-b");
      PrepJob.Result ra = PrepJob.run(spark, config(arrow.toString(), a, "input_type=arrow", "format=" + c.format()));
      PrepJob.Result rb = PrepJob.run(spark, config(twin.toString(), b, "format=" + c.format()));
      assertEquals(c.rows().size(), ra.inputRows(), c.format());
      assertTrue(ra.rejected() > 0 && ra.rows().values().stream().mapToLong(Long::longValue).sum() > 0, c.format());
      assertEquals(rb.rejectReasons(), ra.rejectReasons(), c.format());
      assertEquals(data(b), data(a), c.format());
      assertEquals(rejects(b), rejects(a), c.format());
    }
  }

  static IllegalArgumentException refused(Path input, Path out, String type, String format) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> PrepJob.run(spark, config(input.toString(), out, "input_type=" + type, "format=" + format)));
    assertFalse(Files.exists(out), "nothing written for " + e.getMessage());
    return e;
  }

  @Test
  void badArrowInputsFailNamingTheFileBeforeAnythingIsWritten(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("out");
    ArrowFixtures.hfFolder(tmp.resolve("hf"), CHAT, chatShards());
    Path shard = tmp.resolve("hf/data-00001-of-00002.arrow");
    byte[] whole = Files.readAllBytes(shard);
    // a stream cut in a record batch, and one cut just before its end-of-stream marker
    for (int cut : new int[] {whole.length / 2, whole.length - 8}) {
      Files.write(shard, Arrays.copyOf(whole, cut));
      String m = refused(tmp.resolve("hf"), out, "hf-datasets", "messages").getMessage();
      assertTrue(m.contains(shard.toString()) && m.contains("truncated"), m);
    }
    Files.write(shard, whole);
    // a file-format file without its footer
    Path plain = Files.createDirectories(tmp.resolve("plain"));
    ArrowFixtures.write(plain.resolve("x.arrow"), CHAT, chatShards().get(0), true, 2);
    byte[] file = Files.readAllBytes(plain.resolve("x.arrow"));
    Files.write(plain.resolve("x.arrow"), Arrays.copyOf(file, file.length - 10));
    String m = refused(plain, out, "arrow", "messages").getMessage();
    assertTrue(m.contains("x.arrow") && m.contains("truncated"), m);
    // not Arrow at all
    Files.writeString(plain.resolve("x.arrow"), "{\"messages\": []}\n");
    m = refused(plain, out, "arrow", "messages").getMessage();
    assertTrue(m.contains("x.arrow") && m.contains("not an Arrow"), m);
    // a schema without the format's columns
    m = refused(tmp.resolve("hf"), out, "hf-datasets", "alpaca").getMessage();
    assertTrue(m.contains("data-00000-of-00002.arrow") && m.contains("'instruction'") && m.contains("messages"), m);
    // state.json naming a missing shard
    Files.delete(shard);
    m = refused(tmp.resolve("hf"), out, "hf-datasets", "messages").getMessage();
    assertTrue(m.contains("state.json") && m.contains("data-00001-of-00002.arrow") && m.contains("does not exist"), m);
    // a DatasetDict folder points at its splits
    Path dict = Files.createDirectories(tmp.resolve("dict"));
    Files.writeString(dict.resolve("dataset_dict.json"), "{\"splits\": [\"train\"]}");
    m = refused(dict, out, "hf-datasets", "messages").getMessage();
    assertTrue(m.contains("DatasetDict") && m.contains(dict + "/train"), m);
  }
}
