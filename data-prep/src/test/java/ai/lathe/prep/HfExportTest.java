package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowStreamReader;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** lathe export-hf: prepared data as a save_to_disk folder, read back with Arrow Java. */
class HfExportTest extends SparkTestBase {
  static final ObjectMapper JSON = new ObjectMapper();

  /** Every row of a save_to_disk folder, in shard order, as "id|input_ids|loss_mask|num_tokens|truncated". */
  static List<String> readBack(Path dir, List<Field> schemaOut, StringBuilder metadata) throws Exception {
    List<String> out = new ArrayList<>();
    for (JsonNode f : JSON.readTree(dir.resolve("state.json").toFile()).path("_data_files")) {
      try (BufferAllocator a = new RootAllocator();
          InputStream in = Files.newInputStream(dir.resolve(f.path("filename").asText()));
          ArrowStreamReader r = new ArrowStreamReader(in, a)) {
        VectorSchemaRoot root = r.getVectorSchemaRoot();
        schemaOut.clear();
        schemaOut.addAll(root.getSchema().getFields());
        metadata.setLength(0);
        metadata.append(root.getSchema().getCustomMetadata().get("huggingface"));
        while (r.loadNextBatch()) {
          for (int i = 0; i < root.getRowCount(); i++) {
            List<String> cells = new ArrayList<>();
            for (String c : List.of("id", "input_ids", "loss_mask", "num_tokens", "truncated")) {
              FieldVector v = root.getVector(c);
              cells.add(String.valueOf(v.getObject(i)).replace(" ", ""));
            }
            out.add(String.join("|", cells));
          }
        }
      }
    }
    return out;
  }

  static List<String> prepared(Path prepared, String split) {
    return spark.read().parquet(prepared.resolve("data").toString()).where("split = '" + split + "'").orderBy("id")
        .collectAsList().stream().map((Row r) -> String.join("|", r.getString(r.fieldIndex("id")),
            String.valueOf(r.getList(r.fieldIndex("input_ids"))).replace(" ", ""),
            String.valueOf(r.getList(r.fieldIndex("loss_mask"))).replace(" ", ""),
            String.valueOf(r.<Integer>getAs("num_tokens")), String.valueOf(r.<Boolean>getAs("truncated"))))
        .toList();
  }

  @Test
  void preparedSftDataExportsAsASaveToDiskDatasetDict(@TempDir Path tmp) throws Exception {
    List<String> lines = Files.readAllLines(Path.of(PrepJobTest.SAMPLE)).subList(0, 60);
    Path in = Files.write(tmp.resolve("in.jsonl"), lines);
    Path prepared = tmp.resolve("prepared");
    PrepJob.run(spark, PrepJobTest.config(in.toString(), prepared, "val_fraction=0.3"));
    Path out = tmp.resolve("hf");
    var counts = HfExport.export(spark, prepared.toString(), out.toString(), null, 2, false);
    assertEquals(List.of("train", "validation"), List.copyOf(counts.keySet()));
    assertEquals("{\"splits\":[\"train\",\"validation\"]}", Files.readString(out.resolve("dataset_dict.json")));
    for (String split : counts.keySet()) {
      Path dir = out.resolve(split);
      JsonNode state = JSON.readTree(dir.resolve("state.json").toFile());
      assertEquals("[{\"filename\":\"data-00000-of-00002.arrow\"},{\"filename\":\"data-00001-of-00002.arrow\"}]",
          state.path("_data_files").toString());
      assertTrue(state.path("_format_type").isNull() && state.path("_format_columns").isNull(), state.toString());
      assertEquals("{}", state.path("_format_kwargs").toString());
      assertFalse(state.path("_output_all_columns").asBoolean(true));
      assertEquals(split, state.path("_split").asText());
      assertEquals(16, state.path("_fingerprint").asText().length());
      // values: every prepared row of the split, sorted by id across the shards
      List<Field> fields = new ArrayList<>();
      StringBuilder meta = new StringBuilder();
      List<String> back = readBack(dir, fields, meta);
      assertEquals(prepared(prepared, split), back);
      assertEquals(counts.get(split), (long) back.size());
      assertTrue(back.size() > 5, split + " has " + back.size());
      // schema: Arrow types as datasets makes them
      assertEquals(List.of("id", "source_id", "lang", "split", "input_ids", "loss_mask", "position_ids", "num_tokens",
          "num_loss_tokens", "truncated"), fields.stream().map(Field::getName).toList());
      Field ids = fields.get(4);
      assertEquals(ArrowType.List.INSTANCE, ids.getType());
      assertEquals("item", ids.getChildren().get(0).getName());
      assertEquals(new ArrowType.Int(32, true), ids.getChildren().get(0).getType());
      assertEquals(ArrowType.Utf8.INSTANCE, fields.get(0).getType());
      assertEquals(ArrowType.Bool.INSTANCE, fields.get(9).getType());
      // features: in the schema metadata and in dataset_info.json, the same
      JsonNode features = JSON.readTree(meta.toString()).path("info").path("features");
      assertEquals("{\"feature\":{\"dtype\":\"int32\",\"_type\":\"Value\"},\"_type\":\"Sequence\"}",
          features.path("input_ids").toString());
      assertEquals("{\"dtype\":\"string\",\"_type\":\"Value\"}", features.path("id").toString());
      assertEquals("{\"dtype\":\"int32\",\"_type\":\"Value\"}", features.path("num_tokens").toString());
      assertEquals("{\"dtype\":\"bool\",\"_type\":\"Value\"}", features.path("truncated").toString());
      assertEquals("bool", features.path("loss_mask").path("feature").path("dtype").asText());
      assertEquals(features, JSON.readTree(dir.resolve("dataset_info.json").toFile()).path("features"));
      // the same values, schema and feature metadata through a reader written from the format spec
      List<String> spec = new ArrayList<>();
      for (JsonNode f : state.path("_data_files")) {
        IpcSpecReader.Stream st = IpcSpecReader.read(Files.readAllBytes(dir.resolve(f.path("filename").asText())));
        assertEquals(fields.stream().map(Field::getName).toList(), st.fields().stream().map(IpcSpecReader.Field::name)
            .toList());
        assertEquals(List.of("utf8", "utf8", "utf8", "utf8", "list", "list", "list", "int32", "int32", "bool"),
            st.fields().stream().map(IpcSpecReader.Field::type).toList());
        assertEquals("int32", st.fields().get(4).children().get(0).type());
        assertEquals("bool", st.fields().get(5).children().get(0).type());
        assertEquals(features, JSON.readTree(st.metadata().get("huggingface")).path("info").path("features"));
        for (var row : st.rows()) {
          spec.add(String.join("|", List.of("id", "input_ids", "loss_mask", "num_tokens", "truncated").stream()
              .map(c -> String.valueOf(row.get(c)).replace(" ", "")).toList()));
        }
      }
      assertEquals(prepared(prepared, split), spec);
    }
    // an exported split is an hf-datasets input again
    assertEquals(2, ArrowInput.hfShards(out.resolve("train").toString(), spark.sparkContext().hadoopConfiguration())
        .size());
    // one split, shards by size; an existing output is kept without --overwrite
    Path one = tmp.resolve("one");
    HfExport.export(spark, prepared.toString(), one.toString(), "validation", 0, false);
    assertEquals(prepared(prepared, "validation"), readBack(one, new ArrayList<>(), new StringBuilder()));
    assertTrue(Files.exists(one.resolve("data-00000-of-00001.arrow")) && !Files.exists(one.resolve("dataset_dict.json")));
    var e = assertThrows(IllegalArgumentException.class,
        () -> HfExport.export(spark, prepared.toString(), one.toString(), "train", 0, false));
    assertTrue(e.getMessage().contains("--overwrite"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> HfExport.export(spark, prepared.toString(), tmp.resolve("x").toString(), "test", 0, false));
    assertTrue(e.getMessage().contains("no rows in split 'test'"), e.getMessage());
    assertFalse(Files.exists(tmp.resolve("x")));
    try (var s = Files.list(tmp)) {
      assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".x.tmp")), "temp folder removed");
    }
  }
}
