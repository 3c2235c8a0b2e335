package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Batch;
import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.prep.PrepJob;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

class RefLogpsJobTest {
  @Test
  void referenceColumnsMatchScoringOneSequenceAtATime(@TempDir Path tmp) throws Exception {
    SparkSession spark = SparkSession.builder().master("local[2]").appName("ref-test").config("spark.ui.enabled", "false")
        .config("spark.local.dir", "target/spark-local").config("spark.driver.host", "127.0.0.1").getOrCreate();
    try {
      LlamaConfig c = new LlamaConfig("llama", 32000, 32, 1, 4, 2, 48, 1e-5, 10000, false, 256, 1, 2);
      Path model = tmp.resolve("model");
      RandomLlama.write(model, c, 1, "F32", Path.of("../data/tokenizer/llama2"));
      PrepJob.run(spark, Config.load(null, List.of("input=../data/sample/debian-faq/instructions.jsonl",
          "output=" + tmp.resolve("pairs"), "tokenizer=" + model, "max_length=64", "format=alpaca", "kind=preference",
          "max_reject_fraction=1.0")));
      long n = RefLogpsJob.run(spark, Config.load(null, List.of("model=" + model, "data=" + tmp.resolve("pairs"),
          "output=" + tmp.resolve("ref"))));
      assertTrue(n > 600);
      List<Row> rows = spark.read().parquet(tmp.resolve("ref/data").toString()).orderBy("id").limit(4).collectAsList();
      LlamaModel m = new LlamaModel(HfCheckpoint.load(model, DataType.DOUBLE), null, DataType.DOUBLE);
      for (Row r : rows) {
        int[] ids = RefLogpsJob.ints(r.getList(r.fieldIndex("chosen_ids")));
        int start = r.getInt(r.fieldIndex("chosen_start"));
        double expect = m.sequenceLogProbs(Batch.of(List.of(ids), new int[] {start}, ids.length, 0))[0];
        assertEquals(expect, r.getDouble(r.fieldIndex("ref_chosen_logp")), 1e-3);
        int[] rj = RefLogpsJob.ints(r.getList(r.fieldIndex("rejected_ids")));
        int rs = r.getInt(r.fieldIndex("rejected_start"));
        double er = m.sequenceLogProbs(Batch.of(List.of(rj), new int[] {rs}, rj.length, 0))[0];
        assertEquals(er, r.getDouble(r.fieldIndex("ref_rejected_logp")), 1e-3);
      }
      PrepJob.run(spark, Config.load(null, List.of("input=../data/sample/debian-faq/instructions.jsonl",
          "output=" + tmp.resolve("sft"), "tokenizer=" + model, "max_length=64")));
      var e = assertThrows(IllegalArgumentException.class, () -> RefLogpsJob.run(spark, Config.load(null,
          List.of("model=" + model, "data=" + tmp.resolve("sft"), "output=" + tmp.resolve("never")))));
      assertTrue(e.getMessage().contains("no completions to score"), e.getMessage());
    } finally {
      spark.stop();
    }
  }

  /**
   * The job's columns against an independent PyTorch implementation of transformers' Llama + PEFT
   * LoRA (tests/python/llama_ref.py; golden files, BF16 checkpoint, GQA, untied head) and against
   * the score command, with the reference = base and = base + adapter.
   */
  @Test
  void matchesTorchAndScoreOnTheGoldenCheckpoint(@TempDir Path tmp) throws Exception {
    Path gold = Path.of("../model/src/test/resources/golden/torch-tiny");
    Path model = tmp.resolve("model");
    java.nio.file.Files.createDirectories(model);
    for (String f : List.of("config.json", "model.safetensors")) {
      java.nio.file.Files.copy(gold.resolve("model").resolve(f), model.resolve(f));
    }
    java.nio.file.Files.writeString(model.resolve("tokenizer.json"), "{\"golden\": true}");
    var om = new com.fasterxml.jackson.databind.ObjectMapper();
    List<com.fasterxml.jackson.databind.JsonNode> rows = jsonLines(gold.resolve("rows.jsonl"));
    List<com.fasterxml.jackson.databind.JsonNode> exp = jsonLines(gold.resolve("expected.jsonl"));
    SparkSession spark = SparkSession.builder().master("local[2]").appName("ref-torch").config("spark.ui.enabled", "false")
        .config("spark.local.dir", "target/spark-local").config("spark.driver.host", "127.0.0.1").getOrCreate();
    try {
      List<Row> in = new java.util.ArrayList<>();
      for (var r : rows) {
        List<Integer> ids = new java.util.ArrayList<>();
        r.get("input_ids").forEach(x -> ids.add(x.asInt()));
        in.add(org.apache.spark.sql.RowFactory.create("row" + r.get("id").asInt(), "src", "en", "train",
            scala.jdk.javaapi.CollectionConverters.asScala(ids).toSeq(), r.get("completion_start").asInt(), true));
      }
      Path data = tmp.resolve("kto");
      spark.createDataFrame(in, ai.lathe.prep.Schemas.KTO).write().partitionBy("lang", "split")
          .parquet(data + "/data");
      java.nio.file.Files.writeString(data.resolve("manifest.json"), om.writeValueAsString(java.util.Map.of("kind", "kto",
          "schema_version", 1, "tokenizer_sha256", ai.lathe.model.io.Hashing.sha256(
              java.nio.file.Files.newInputStream(model.resolve("tokenizer.json"))))));
      RefLogpsJob.run(spark, Config.load(null, List.of("model=" + model, "data=" + data, "output=" + tmp.resolve("base"),
          "batch_size=2")));
      RefLogpsJob.run(spark, Config.load(null, List.of("model=" + model, "data=" + data, "output=" + tmp.resolve("ad"),
          "reference.adapter=" + gold.resolve("adapter"))));
      Path scored = tmp.resolve("score.jsonl");
      assertEquals(0, ai.lathe.model.cli.Main.dispatch(new String[] {"score", "--model", gold.resolve("model").toString(), "--input",
          gold.resolve("rows.jsonl").toString(), "--output", scored.toString()}, ai.lathe.model.cli.Main.COMMANDS));
      List<String> byScore = java.nio.file.Files.readAllLines(scored);
      for (int i = 0; i < rows.size(); i++) {
        double b = spark.read().parquet(tmp.resolve("base/data").toString()).where("id = 'row" + i + "'").first()
            .getAs("ref_logp");
        double a = spark.read().parquet(tmp.resolve("ad/data").toString()).where("id = 'row" + i + "'").first()
            .getAs("ref_logp");
        assertEquals(exp.get(i).get("logprob").asDouble(), b, 1e-3, "row " + i + " vs torch");
        assertEquals(exp.get(i).get("logprob_adapter").asDouble(), a, 1e-3, "row " + i + " with adapter vs torch");
        assertEquals(om.readTree(byScore.get(i)).get("logprob").asDouble(), b, 1e-3, "row " + i + " vs score");
        assertTrue(Math.abs(a - b) > 0.1, "the reference adapter changes the result");
      }
    } finally {
      spark.stop();
    }
  }

  static List<com.fasterxml.jackson.databind.JsonNode> jsonLines(Path p) throws Exception {
    var om = new com.fasterxml.jackson.databind.ObjectMapper();
    List<com.fasterxml.jackson.databind.JsonNode> out = new java.util.ArrayList<>();
    for (String l : java.nio.file.Files.readAllLines(p)) {
      if (!l.isBlank()) {
        out.add(om.readTree(l));
      }
    }
    return out;
  }
}
