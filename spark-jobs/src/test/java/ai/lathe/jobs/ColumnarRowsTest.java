package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.text.ChatTemplate.Tokens;
import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.KtoTrainer;
import ai.lathe.prep.PreferenceRows;
import ai.lathe.prep.PreparedRow;
import ai.lathe.prep.Schemas;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import scala.Tuple2;

/**
 * The columnar read of prepared data gives exactly the records of the Row-by-Row read it replaced,
 * over many small batches (the reader reuses its vectors between batches), packed rows included.
 */
class ColumnarRowsTest {
  static SparkSession spark;
  static Path dir;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkSession.builder().master("local[2]").appName("columnar-test").config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2").config("spark.local.dir", "target/spark-local")
        .config("spark.driver.host", "127.0.0.1")
        // tiny batches: every partition spans several, so vector reuse between batches is exercised
        .config("spark.sql.parquet.columnarReaderBatchSize", "7").getOrCreate();
    dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "columnar");
  }

  @AfterAll
  static void tearDown() throws Exception {
    spark.stop();
    ai.lathe.model.io.AtomicDir.deleteTree(dir);
  }

  /** Prepared SFT rows of random lengths in two languages and splits; every fifth one packed. */
  static List<PreparedRow> sftRows(int n, int maxLen, long seed) {
    Random rnd = new Random(seed);
    List<PreparedRow> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int len = 1 + rnd.nextInt(maxLen);
      int[] ids = new int[len];
      boolean[] mask = new boolean[len];
      int[] pos = PreparedRow.sequential(len);
      int cut = i % 5 == 0 && len > 3 ? len / 2 : len;
      int loss = 0;
      for (int t = 0; t < len; t++) {
        ids[t] = rnd.nextInt(128256);
        mask[t] = rnd.nextBoolean();
        loss += mask[t] ? 1 : 0;
        pos[t] = t < cut ? t : t - cut;
      }
      out.add(new PreparedRow(String.format("r%07d", i), "s" + i, i % 3 == 0 ? "de" : "en", i % 4 == 0 ? "validation"
          : "train", ids, mask, pos, len, loss, false));
    }
    return out;
  }

  static String writeSft(String name, List<PreparedRow> rows) {
    String data = dir.resolve(name).toString();
    spark.createDataFrame(rows.stream().map(Schemas::toRow).toList(), Schemas.SFT).repartition(3).write()
        .partitionBy("lang", "split").parquet(data + "/data");
    return data;
  }

  static String key(Tuple2<String, Tokens> e) {
    Tokens t = e._2();
    return e._1() + java.util.Arrays.toString(t.ids()) + java.util.Arrays.toString(t.train())
        + java.util.Arrays.toString(t.positions());
  }

  @Test
  void sftTokenRowsEqualTheRowByRowReadForEverySplitAndLanguageFilter() {
    String data = writeSft("sft", sftRows(400, 40, 1));
    for (String split : List.of("train", "validation")) {
      for (List<String> langs : List.of(List.<String>of(), List.of("de"))) {
        List<String> before = PreparedData.examples(spark, data, split, langs)
            .map(r -> key(new Tuple2<>(r.id(), PreparedData.tokens(r)))).collect().stream().sorted().toList();
        List<String> after = PreparedData.tokenRows(spark, data, split, langs).map(ColumnarRowsTest::key).collect()
            .stream().sorted().toList();
        assertTrue(before.size() > 20, split + langs);
        assertEquals(before, after, split + langs);
        // packed rows keep their positions, unpacked ones drop them (as PreparedData.tokens does)
        assertTrue(after.stream().anyMatch(s -> !s.endsWith("null")) && after.stream().anyMatch(s -> s.endsWith("null")));
      }
    }
    // the split/lang filters are pruned into the scan: the Parquet column vectors are read directly
    var df = spark.read().parquet(data + "/data").where(functions.col("split").equalTo("train"))
        .where(functions.col("lang").isin("de"));
    assertEquals(ColumnarRows.Path.COLUMNAR_BATCHES, ColumnarRows.path(df), ColumnarRows.plan(df));
    // a filter on a data column stays above the scan: read through internal rows, same records
    var filtered = df.where(functions.col("num_tokens").gt(10));
    assertEquals(ColumnarRows.Path.INTERNAL_ROWS, ColumnarRows.path(filtered));
    List<String> viaRows = ColumnarRows.map(filtered, PreparedData.TOKEN_COLUMNS, (r, c) -> r.getUTF8String(c[0])
        .toString() + r.getArray(c[1]).numElements()).collect().stream().sorted().toList();
    List<String> expected = filtered.collectAsList().stream().map(r -> r.getString(r.fieldIndex("id"))
        + r.getList(r.fieldIndex("input_ids")).size()).sorted().toList();
    assertEquals(expected, viaRows);
    assertTrue(expected.size() > 10);
  }

  static String pairKey(Tuple2<String, Object> e) {
    DpoTrainer.Pair p = (DpoTrainer.Pair) e._2();
    return e._1() + java.util.Arrays.toString(p.chosen()) + p.chosenStart() + java.util.Arrays.toString(p.rejected())
        + p.rejectedStart() + "|" + p.refChosen() + "|" + p.refRejected();
  }

  @Test
  void preferencePairsAndKtoExamplesEqualTheRowByRowRead() {
    Random rnd = new Random(2);
    List<Row> rows = new ArrayList<>();
    List<Row> kto = new ArrayList<>();
    for (int i = 0; i < 120; i++) {
      int[] prompt = rnd.ints(1 + rnd.nextInt(9), 0, 5000).toArray();
      int[] c = java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt), rnd.ints(1 + rnd.nextInt(9), 0, 5000))
          .toArray();
      int[] r = java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt), rnd.ints(1 + rnd.nextInt(9), 0, 5000))
          .toArray();
      String split = i % 4 == 0 ? "validation" : "train";
      Row base = Schemas.toRow(new PreferenceRows.TokenPair("p" + i, "s" + i, "en", split, c, prompt.length, r,
          prompt.length, false));
      List<Object> cells = new ArrayList<>(scala.jdk.javaapi.CollectionConverters.asJava(base.toSeq()));
      cells.add(-rnd.nextDouble() * 10);
      cells.add(-rnd.nextDouble() * 10);
      rows.add(RowFactory.create(cells.toArray()));
      kto.add(Schemas.toRow(new PreferenceRows.TokenLabeled("k" + i, "s" + i, "en", split, c, prompt.length,
          i % 2 == 0)));
    }
    String data = dir.resolve("pref").toString();
    spark.createDataFrame(rows, Schemas.PREFERENCE.add("ref_chosen_logp", DataTypes.DoubleType, false)
        .add("ref_rejected_logp", DataTypes.DoubleType, false)).write().partitionBy("lang", "split").parquet(data);
    Dataset<Row> df = spark.read().parquet(data);
    List<String> before = df.where("split = 'train'").javaRDD().map(r -> pairKey(new Tuple2<>(r.getString(
        r.fieldIndex("id")), PrefData.pair(r)))).collect().stream().sorted().toList();
    List<String> after = PrefData.examples(df, "train", false).map(ColumnarRowsTest::pairKey).collect().stream()
        .sorted().toList();
    assertEquals(ColumnarRows.Path.COLUMNAR_BATCHES, ColumnarRows.path(df.where("split = 'train'")),
        ColumnarRows.plan(df.where("split = 'train'")));
    assertEquals(90, after.size());
    assertEquals(before, after);
    // KTO rows with a reference column computed in the plan (as reference.on_the_fly does): internal rows
    String kdata = dir.resolve("kto").toString();
    spark.createDataFrame(kto, Schemas.KTO).write().partitionBy("lang", "split").parquet(kdata);
    Dataset<Row> kdf = spark.read().parquet(kdata)
        .withColumn("ref_logp", functions.expr("CAST(-1.5 * completion_start AS DOUBLE)"));
    List<String> kb = kdf.where("split = 'train'").javaRDD().map(r -> ktoKey(r.getString(r.fieldIndex("id")),
        PrefData.example(r))).collect().stream().sorted().toList();
    List<String> ka = PrefData.examples(kdf, "train", true).map(e -> ktoKey(e._1(), (KtoTrainer.Example) e._2()))
        .collect().stream().sorted().toList();
    assertEquals(90, ka.size());
    assertEquals(kb, ka);
  }

  static String ktoKey(String id, KtoTrainer.Example x) {
    return id + java.util.Arrays.toString(x.ids()) + x.start() + x.desirable() + x.ref();
  }

  /**
   * Partition read time of prepared SFT data, Row by Row (before) against columnar (after):
   * {@code -Dlathe.bench.rows=100000} runs it and prints the times (not run by default).
   */
  @Test
  void benchPartitionRead() {
    int n = Integer.getInteger("lathe.bench.rows", 0);
    Assumptions.assumeTrue(n > 0, "set -Dlathe.bench.rows to run");
    spark.conf().set("spark.sql.parquet.columnarReaderBatchSize", "4096");
    String data = writeSft("bench", sftRows(n, 512, 3).stream().map(r -> new PreparedRow(r.id(), r.sourceId(), "en",
        "train", r.inputIds(), r.lossMask(), r.positionIds(), r.numTokens(), r.numLossTokens(), false)).toList());
    for (int rep = 0; rep < 2; rep++) {
      long t0 = System.nanoTime();
      long a = PreparedData.examples(spark, data, "train", List.of()).map(PreparedData::tokens)
          .map(t -> (long) t.ids().length).reduce(Long::sum);
      long t1 = System.nanoTime();
      long b = PreparedData.tokenRows(spark, data, "train", List.of()).map(t -> (long) t._2().ids().length)
          .reduce(Long::sum);
      long t2 = System.nanoTime();
      assertEquals(a, b);
      System.out.printf("bench partition read, %d rows, %d tokens: Row by Row %.2f s, columnar %.2f s%n", n, a,
          (t1 - t0) / 1e9, (t2 - t1) / 1e9);
    }
  }
}
