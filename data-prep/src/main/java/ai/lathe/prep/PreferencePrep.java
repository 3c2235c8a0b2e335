package ai.lathe.prep;

import ai.lathe.model.Config;
import ai.lathe.model.text.ChatTemplate;
import ai.lathe.model.text.HfTokenizer;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.spark.SparkFiles;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * The prep job for preference data (kind preference: prompt/chosen/rejected, or pairs built from
 * instruction data) and KTO data (kind kto: prompt/completion/label): the same ingest, rejects,
 * dedup, split, manifest and atomic commit as instruction prep, with their own Parquet schemas.
 */
public final class PreferencePrep {
  private PreferencePrep() {}

  /** A row after validation: a Pair, Labeled or Clean (for constructed pairs), or a reject. */
  record Item(String file, long line, String id, Serializable value, String reason, String raw)
      implements Serializable {}

  static Item parse(PrepJob.Line l, PrepOptions o) {
    String text = null;
    try {
      text = RowTransforms.decodeStrict(l.raw(), l.raw().length);
      if (text.length() > o.maxChars()) {
        throw new RowTransforms.Rejected("row longer than max_chars (" + text.length() + " > " + o.maxChars() + ")");
      }
      var json = RowTransforms.parse(text);
      Serializable v;
      String id;
      if (o.kind().equals("kto")) {
        PreferenceRows.Labeled x = PreferenceRows.labeled(json, o);
        v = x;
        id = x.id();
      } else if (o.format().equals("preference")) {
        PreferenceRows.Pair x = PreferenceRows.pair(json, o);
        v = x;
        id = x.id();
      } else {
        RowTransforms.Clean x = RowTransforms.clean(json, o);
        v = x;
        id = x.id();
      }
      return new Item(l.file(), l.line(), id, v, null, null);
    } catch (RowTransforms.Rejected e) {
      String raw = text == null ? new String(l.raw(), java.nio.charset.StandardCharsets.UTF_8) : text;
      return new Item(l.file(), l.line(), null, null, e.getMessage(), raw.length() > 2000 ? raw.substring(0, 2000) : raw);
    } catch (RuntimeException e) {
      return new Item(l.file(), l.line(), null, null, "unreadable row: " + e, null);
    }
  }

  static boolean earlier(Item a, Item b) {
    int c = a.file().compareTo(b.file());
    return c < 0 || c == 0 && a.line() <= b.line();
  }

  public static PrepJob.Result run(SparkSession spark, Config c, PrepOptions o) throws Exception {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Configuration hconf = jsc.hadoopConfiguration();
    ChatTemplate template = ChatTemplate.of(o.template());
    String[] shipped = PrepJob.shipTokenizer(spark, o);
    String tokName = shipped[0];
    String tokSha = shipped[1];
    List<FileStatus> files = PrepJob.listInputs(o, hconf);
    JavaRDD<Item> staged = PrepJob.ingest(spark, jsc, files, o.inputType()).map(l -> parse(l, o))
        .persist(StorageLevel.MEMORY_AND_DISK());
    long inputRows = staged.count();
    JavaRDD<Item> good = staged.filter(i -> i.reason() == null);
    long goodRows = good.count();
    JavaRDD<Item> unique = good.mapToPair(i -> new Tuple2<>(i.id(), i)).reduceByKey((a, b) -> earlier(a, b) ? a : b)
        .values();
    long uniqueRows = unique.count();
    boolean constructed = o.kind().equals("preference") && !o.format().equals("preference");
    if (constructed) {
      long seed = o.pairSeed();
      unique = unique.mapToPair(i -> new Tuple2<>(((RowTransforms.Clean) i.value()).lang(), i)).groupByKey()
          .flatMap(g -> {
            List<Item> items = new ArrayList<>();
            g._2().forEach(items::add);
            items.sort((a, b) -> a.id().compareTo(b.id()));
            List<RowTransforms.Clean> cleans = new ArrayList<>();
            items.forEach(i -> cleans.add((RowTransforms.Clean) i.value()));
            List<Item> out = new ArrayList<>();
            List<PreferenceRows.Pair> pairs = PreferenceRows.fromInstructions(cleans, seed, o.pairRejected());
            for (int k = 0, p = 0; k < items.size() && p < pairs.size(); k++) {
              if (items.get(k).id().equals(pairs.get(p).id())) {
                out.add(new Item(items.get(k).file(), items.get(k).line(), pairs.get(p).id(), pairs.get(p), null, null));
                p++;
              }
            }
            return out.iterator();
          });
    }
    String kind = o.kind();
    JavaRDD<Object> tokenised = unique.mapPartitions(it -> {
      HfTokenizer tok = ExecutorCache.tokenizer(SparkFiles.get(tokName));
      List<Object> out = new ArrayList<>();
      while (it.hasNext()) {
        Item i = it.next();
        try {
          if (i.value() instanceof PreferenceRows.Labeled l) {
            out.add(PreferenceRows.tokenize(l, l.split(o.valFraction()), tok, template, o.maxLength()));
          } else {
            PreferenceRows.Pair p = (PreferenceRows.Pair) i.value();
            out.add(PreferenceRows.tokenize(p, p.split(o.valFraction()), tok, template, o.maxLength()));
          }
        } catch (RowTransforms.Rejected e) {
          out.add(new Item(i.file(), i.line(), i.id(), null, e.getMessage(), null));
        }
      }
      return out.iterator();
    }).persist(StorageLevel.MEMORY_AND_DISK());
    JavaRDD<Item> bad = staged.filter(i -> i.reason() != null)
        .union(tokenised.filter(x -> x instanceof Item).map(x -> (Item) x));
    JavaRDD<Row> rowsOut = tokenised.filter(x -> !(x instanceof Item)).map(x -> x instanceof PreferenceRows.TokenPair p
        ? Schemas.toRow(p) : Schemas.toRow((PreferenceRows.TokenLabeled) x));
    Map<String, Long> rows = new TreeMap<>(rowsOut.map(r -> r.getString(2) + "/" + r.getString(3)).countByValue());
    Map<String, Long> reasons = new TreeMap<>(bad.map(i -> PrepJob.reasonKind(i.reason())).countByValue());
    long rejected = reasons.values().stream().mapToLong(Long::longValue).sum();
    PrepJob.checkRejects(rejected, inputRows, o, reasons);
    PrepJob.checkNotEmpty(rows, inputRows, o, c);
    PrepJob.Result result = new PrepJob.Result(inputRows, rejected, goodRows - uniqueRows, 0, 0, 0, rows, reasons, 0, 0);
    try {
      PrepJob.commit(spark, o, spark.createDataFrame(rowsOut, kind.equals("kto") ? Schemas.KTO : Schemas.PREFERENCE),
          bad.map(i -> RowFactory.create(i.file(), i.line(), i.reason(), i.raw())),
          PrepJob.manifest(o, c, files, tokSha, result));
    } finally {
      staged.unpersist();
      tokenised.unpersist();
    }
    System.out.printf("prep (%s%s): %d rows in, %d rejected %s, %d duplicates; wrote %s %s%n", kind,
        constructed ? ", pairs built from instructions" : "", inputRows, rejected, reasons, result.duplicates(),
        o.output(), rows);
    return result;
  }
}
