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
}
