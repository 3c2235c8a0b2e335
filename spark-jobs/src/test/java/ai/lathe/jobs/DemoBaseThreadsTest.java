package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.nn.Par;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo base stage (sft-local in the pipeline's JVM) gives the row loops' JVM-wide thread count
 * back when it ends: the Spark stages that follow run one task per core, one thread per task.
 */
class DemoBaseThreadsTest {
  @Test
  void theStageLeavesParsThreadsAsItFoundThem(@TempDir Path tmp) throws Exception {
    Path init = tmp.resolve("model-init");
    RandomLlama.write(init, LlamaConfig.family("llama", 32000, 32, 2, 4, 2, 64, 0, 10000.0, false, 256, 0), 5, "F32",
        Path.of("../data/tokenizer/llama2"));
    StringBuilder rows = new StringBuilder();
    for (int i = 0; i < 12; i++) {
      rows.append(String.format("{\"instruction\": \"Count to %d\", \"input\": \"\", \"output\": \"one two %d\"}%n",
          i, i));
    }
    Path data = Files.writeString(tmp.resolve("d.jsonl"), rows.toString());
    Path out = tmp.resolve("model");
    // train.threads 3: the stage sets Par to 3 whatever the machine's core count
    Config base = Config.load(null, List.of("model=" + init, "data=" + data, "output=" + out, "train.mode=full",
        "train.max_steps=1", "train.seq_len=32", "train.batch_size=2", "train.threads=3"));
    Config prep = Config.load(null, List.of("val_fraction=0.2"));
    Par.setThreads(1);
    try {
      DemoBase.create(List.of(), base, prep);
      assertTrue(Files.exists(out.resolve("lathe-run.json")), "the stage ran and committed its model");
      assertEquals(1, Par.threads(), "Par's threads after the demo base stage");
    } finally {
      Par.setThreads(1);
    }
  }
}
