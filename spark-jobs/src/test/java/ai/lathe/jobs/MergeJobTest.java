package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.prep.PrepJob;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

class MergeJobTest {
  @Test
  void aRefusedGateKeepsTheLastPublishedMerge(@TempDir Path tmp) throws Exception {
    SparkSession spark = SparkSession.builder().master("local[2]").appName("merge-test").config("spark.ui.enabled", "false")
        .config("spark.local.dir", "target/spark-local").config("spark.driver.host", "127.0.0.1").getOrCreate();
    try {
      LlamaConfig c = new LlamaConfig("llama", 32000, 32, 1, 4, 2, 48, 1e-5, 10000, false, 256, 1, 2);
      RandomLlama.write(tmp.resolve("model"), c, 1, "F32", Path.of("../data/tokenizer/llama2"));
      PrepJob.run(spark, Config.load(null, List.of("input=../data/sample/debian-faq/instructions.jsonl",
          "output=" + tmp.resolve("data"), "tokenizer=" + tmp.resolve("model"), "max_length=64")));
      for (String l : List.of("en", "de")) {
        PeftAdapter.write(tmp.resolve(l), AdapterSet.init(c, LoraConfig.of(2, 4, List.of("q_proj", "v_proj")),
            l.hashCode(), DataType.FLOAT), "m", null);
      }
      List<String> common = List.of("method=ties", "base_model=" + tmp.resolve("model"),
          "adapters=[{path: " + tmp.resolve("en") + "}, {path: " + tmp.resolve("de") + "}]",
          "parameters.density=0.5", "output.rank=2", "output.path=" + tmp.resolve("merged"),
          "gate.data=" + tmp.resolve("data"), "gate.langs=[en, de]", "gate.seq_len=64");
      List<String> pass = new java.util.ArrayList<>(common);
      pass.add("gate.max_val_loss=100");
      var losses = MergeJob.run(spark, Config.load(null, pass));
      assertEquals(2, losses.size());
      String published = Files.readString(tmp.resolve("merged/lathe-merge.json"));
      List<String> fail = new java.util.ArrayList<>(common);
      fail.add("gate.max_val_loss=1.0");
      fail.add("parameters.density=0.9");
      MergeJob.GateFailed e = assertThrows(MergeJob.GateFailed.class, () -> MergeJob.run(spark, Config.load(null, fail)));
      assertEquals(3, e.code);
      assertTrue(e.getMessage().contains("exceeds"), e.getMessage());
      assertEquals(published, Files.readString(tmp.resolve("merged/lathe-merge.json")), "last merge kept");
      assertFalse(Files.list(tmp).anyMatch(p -> p.getFileName().toString().contains("staging")), "no staging left");
    } finally {
      spark.stop();
    }
  }
}
