package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.cli.Args;
import ai.lathe.model.io.Hashing;
import ai.lathe.prep.PreparedRow;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * {@code lathe bench-sft}: distributed SFT throughput on the bench config, run with local[1] and
 * local[2] in turn: tokens/s of each, the speed-up, and the share of round time spent in
 * broadcast + aggregate. Rounds after the first are measured (the first loads the model and warms
 * the JIT). The last line is one JSON object.
 */
public final class SparkBenchCommand {
  public static final String USAGE = """
      usage: lathe bench-sft [--dim 512] [--layers 4] [--heads 8] [--kv-heads 8] [--ffn 1376] [--seq 256]
                             [--batch 4] [--rank 16] [--freq 8] [--rounds 3] [--masters local[1],local[2]]
        Distributed SFT tokens/s on random data for each master, the speed-up over the first,
        and broadcast+aggregate as a share of round time; last line is JSON.""";

  private SparkBenchCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("bench-sft", argv, Set.of()).allow(Set.of("dim", "layers", "heads", "kv-heads", "ffn", "seq",
        "batch", "rank", "freq", "rounds", "masters"));
    int seq = a.integer("seq", 256);
    int heads = a.integer("heads", 8);
    int bsz = a.integer("batch", 4);
    int freq = a.integer("freq", 8);
    int rounds = a.integer("rounds", 3);
    Path dir = Files.createTempDirectory("lathe-bench-sft");
    Path tokDir = Path.of("data/tokenizer/llama2");
    LlamaConfig c = new LlamaConfig("llama", 32000, a.integer("dim", 512), a.integer("layers", 4), heads,
        a.integer("kv-heads", heads), a.integer("ffn", 1376), 1e-5, 10000, false, Math.max(2048, seq), 1, 2);
    Path model = dir.resolve("model");
    RandomLlama.write(model, c, 1, "F32", tokDir);
    ObjectNode out = new ObjectMapper().createObjectNode();
    double base = 0;
    for (String master : a.str("masters", "local[1],local[2]").split(",")) {
      SparkSession spark = SparkSession.builder().master(master).appName("lathe-bench-sft")
          .config("spark.ui.enabled", "false").getOrCreate();
      try {
        int parts = spark.sparkContext().defaultParallelism();
        Path data = dir.resolve("data-" + parts);
        if (!Files.exists(data)) {
          writeRandomData(spark, data, model, parts * bsz * freq * (rounds + 1), seq);
        }
        Config cfg = Config.load(null, List.of("model=" + model, "data=" + data, "output=" + dir.resolve("out-" + parts),
            "lora.r=" + a.integer("rank", 16), "lora.alpha=" + 2 * a.integer("rank", 16), "lora.dropout=0",
            "train.batch_size=" + bsz, "train.seq_len=" + seq, "train.max_steps=" + freq * rounds,
            "distributed.averaging_frequency=" + freq, "distributed.partitions=" + parts,
            "distributed.checkpoint_every=0", "distributed.eval_every=0")).validate(ConfigReference.SFT);
        SftTrainJob.Result r = SftTrainJob.run(spark, cfg);
        double tok = 0;
        double sec = 0;
        double comm = 0;
        for (int i = 1; i < r.metrics().size(); i++) {
          var m = r.metrics().get(i);
          tok += m.get("tokens").asDouble();
          sec += m.get("round_s").asDouble();
          comm += m.get("broadcast_aggregate_s").asDouble();
        }
        double tps = tok / sec;
        if (base == 0) {
          base = tps;
        }
        String key = master.replaceAll("[^a-z0-9]", "");
        out.put(key + "_tokens_per_s", Math.round(tps * 10) / 10.0);
        out.put(key + "_broadcast_aggregate_fraction", Math.round(1e4 * comm / sec) / 1e4);
        out.put(key + "_speedup", Math.round(100 * tps / base) / 100.0);
        System.out.printf("%s: %d partitions, %.0f tokens/s, broadcast+aggregate %.2f%% of round time, %.2fx%n", master,
            parts, tps, 100 * comm / sec, tps / base);
      } finally {
        spark.stop();
      }
    }
    ai.lathe.model.io.AtomicDir.deleteTree(dir);
    System.out.println(out);
    return 0;
  }

  static void writeRandomData(SparkSession spark, Path data, Path model, int rows, int seq) throws Exception {
    Random rng = new Random(7);
    List<org.apache.spark.sql.Row> list = new ArrayList<>();
    for (int i = 0; i < rows; i++) {
      int[] ids = new int[seq];
      boolean[] mask = new boolean[seq];
      for (int t = 0; t < seq; t++) {
        ids[t] = 3 + rng.nextInt(31990);
        mask[t] = t > 0;
      }
      list.add(Schemas.toRow(new PreparedRow(String.format("%08d", i), "", "xx", "train", ids, mask, PreparedRow.sequential(seq), seq, seq - 1,
          false)));
    }
    spark.createDataFrame(list, Schemas.SFT).write().partitionBy("lang", "split").parquet(data + "/data");
    ObjectNode m = new ObjectMapper().createObjectNode().put("schema_version", Schemas.SFT_SCHEMA_VERSION)
        .put("kind", "sft").put("tokenizer_sha256", Hashing.sha256(model.resolve("tokenizer.json")))
        .put("input_fingerprint", "random-bench-data");
    Files.writeString(data.resolve("manifest.json"), m.toString());
  }
}
