package ai.lathe.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.jobs.SftTrainJob;
import ai.lathe.model.Config;
import ai.lathe.prep.HadoopIo;
import ai.lathe.prep.PrepJob;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * prep across executor JVMs (local-cluster) gives the same rows as local[2]; prep and sft read
 * and write hdfs:// on an in-process MiniDFSCluster.
 */
@Tag("slow")
class DistributedPrepTest {
  static final String SAMPLE = Fixtures.ROOT.resolve("data/sample/debian-faq/instructions.jsonl").toString();

  static List<String> rows(SparkSession s, String path) {
    return s.read().parquet(path + "/data").collectAsList().stream().map(Row::toString).sorted()
        .collect(Collectors.toList());
  }

  @Test
  void localClusterAndHdfs() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "dprep");
    Path model = Fixtures.tiny(dir);
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, dir.resolve("hdfs").toString());
    MiniDFSCluster hdfs = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
    try {
      String uri = hdfs.getURI().toString();
      FileSystem fs = hdfs.getFileSystem();
      fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(SAMPLE), new org.apache.hadoop.fs.Path(uri + "/raw/faq.jsonl"));
      fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(model.toUri()), new org.apache.hadoop.fs.Path(uri + "/models/tiny"));

      SparkSession local = Fixtures.session("local[2]").getOrCreate();
      PrepJob.run(local, Config.load(null, List.of("input=" + SAMPLE, "output=" + dir.resolve("local"),
          "tokenizer=" + model, "max_length=96")));
      List<String> expected = rows(local, dir.resolve("local").toString());
      // hdfs:// in and out, then SFT reading data and the base model from HDFS
      PrepJob.run(local, Config.load(null, List.of("input=" + uri + "/raw/faq.jsonl", "output=" + uri + "/prepared",
          "tokenizer=" + model, "max_length=96")));
      assertEquals(expected, rows(local, uri + "/prepared"));
      assertTrue(HadoopIo.exists(uri + "/prepared/_SUCCESS", local.sparkContext().hadoopConfiguration()));
      SftTrainJob.Result r = SftTrainJob.run(local, Config.load(null, List.of("model=" + uri + "/models/tiny",
          "data=" + uri + "/prepared", "output=" + uri + "/adapters/sft", "lora.r=2", "train.batch_size=2",
          "train.seq_len=96", "train.max_steps=2", "distributed.averaging_frequency=2", "distributed.partitions=2")));
      assertEquals(1, r.metrics().size());
      assertTrue(fs.exists(new org.apache.hadoop.fs.Path(uri + "/adapters/sft/adapter_model.safetensors")));
      assertTrue(fs.exists(new org.apache.hadoop.fs.Path(uri + "/adapters/sft.checkpoints/round-000000/state.json")));
      local.stop();

      SparkSession cluster = Fixtures.session("local-cluster[2,1,1024]").getOrCreate();
      try {
        PrepJob.run(cluster, Config.load(null, List.of("input=" + SAMPLE, "output=" + dir.resolve("cluster"),
            "tokenizer=" + model, "max_length=96")));
        assertEquals(expected, rows(cluster, dir.resolve("cluster").toString()));
        var m = new ObjectMapper().readTree(dir.resolve("cluster/manifest.json").toFile());
        assertEquals(662, m.path("counts").path("output_rows").asInt());
      } finally {
        cluster.stop();
      }
    } finally {
      hdfs.shutdown();
    }
  }
}
