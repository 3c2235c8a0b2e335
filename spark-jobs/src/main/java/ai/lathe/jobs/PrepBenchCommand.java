package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.cli.Args;
import ai.lathe.prep.PrepJob;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * {@code lathe bench-prep}: the prep job over N rows made from the sample data (each row made
 * unique), on the current master: end-to-end rows/s, and rows/s and tokens/s of the tokenise
 * stage (its summed task time, per core). Last line is JSON.
 */
public final class PrepBenchCommand {
  public static final String USAGE = """
      usage: lathe bench-prep [--rows 100000] [--tokenizer data/tokenizer/llama2/tokenizer.json] [--max-length 512]
        Runs prep over synthetic rows built from the sample data; prints rows/s and tokens/s.""";

  private PrepBenchCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("bench-prep", argv, Set.of()).allow(Set.of("rows", "tokenizer", "max-length"));
    int n = a.integer("rows", 100_000);
    Path dir = Files.createTempDirectory("lathe-bench-prep");
    List<String> sample = Files.readAllLines(Path.of("data/sample/debian-faq/instructions.jsonl"));
    ObjectMapper om = new ObjectMapper();
    Path in = dir.resolve("rows.jsonl");
    try (BufferedWriter w = Files.newBufferedWriter(in)) {
      for (int i = 0; i < n; i++) {
        ObjectNode row = (ObjectNode) om.readTree(sample.get(i % sample.size()));
        row.put("id", row.get("id").asText() + "-" + i);
        row.put("instruction", row.get("instruction").asText() + " (" + i + ")");
        w.write(om.writeValueAsString(row));
        w.write('\n');
      }
    }
    SparkSession spark = SparkSession.builder().appName("lathe-bench-prep").getOrCreate();
    try {
      long t0 = System.nanoTime();
      PrepJob.Result r = PrepJob.run(spark, Config.load(null, List.of("input=" + in, "output=" + dir.resolve("out"),
          "tokenizer=" + a.str("tokenizer", "data/tokenizer/llama2/tokenizer.json"),
          "max_length=" + a.integer("max-length", 512), "max_reject_fraction=1.0")).validate(ConfigReference.PREP));
      double wall = (System.nanoTime() - t0) / 1e9;
      int cores = spark.sparkContext().defaultParallelism();
      long out = r.rows().values().stream().mapToLong(Long::longValue).sum();
      double stageRowsPerS = out / r.tokeniseTaskSeconds() * cores;
      double stageTokensPerS = r.tokens() / r.tokeniseTaskSeconds() * cores;
      System.out.printf("prep on %s: %d rows in %.1f s end to end (%.0f rows/s); tokenise stage: %.0f rows/s, "
          + "%.0f tokens/s (%d tokens, %.1f task-seconds over %d cores)%n", spark.sparkContext().master(), n, wall,
          n / wall, stageRowsPerS, stageTokensPerS, r.tokens(), r.tokeniseTaskSeconds(), cores);
      ObjectNode j = om.createObjectNode().put("rows", n).put("end_to_end_rows_per_s", Math.round(n / wall))
          .put("tokenise_rows_per_s", Math.round(stageRowsPerS)).put("tokenise_tokens_per_s", Math.round(stageTokensPerS))
          .put("tokens", r.tokens());
      System.out.println(j);
    } finally {
      spark.stop();
      ai.lathe.model.io.AtomicDir.deleteTree(dir);
    }
    return 0;
  }
}
