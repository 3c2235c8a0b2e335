package ai.lathe.prep;

import ai.lathe.model.text.ChatTemplate.Message;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import scala.Tuple2;

/**
 * Near-duplicate removal by MinHash LSH on Spark: rows sharing an LSH band bucket are candidates;
 * within a bucket the earliest row (file, line) is kept and every other whose estimated Jaccard
 * similarity to it reaches the threshold is a duplicate. Deterministic for the same input.
 */
public final class NearDedup {
  private NearDedup() {}

  /** A row's signature with its position, for choosing the row to keep. */
  record Sig(String id, String file, long line, long[] sig) implements java.io.Serializable {}

  static String text(RowTransforms.Clean c) {
    StringBuilder sb = new StringBuilder();
    for (Message m : c.messages()) {
      sb.append(m.content()).append('\n');
    }
    return sb.toString();
  }

  /** Content ids of rows to drop. */
  static JavaRDD<String> duplicates(JavaPairRDD<String, PrepJob.Stage> unique, int numPerm, double threshold) {
    int rows = MinHash.rowsPerBand(numPerm, threshold);
    int bands = numPerm / rows;
    JavaRDD<Sig> sigs = unique.mapPartitions(it -> {
      MinHash mh = new MinHash(numPerm, 42);
      List<Sig> out = new ArrayList<>();
      while (it.hasNext()) {
        Tuple2<String, PrepJob.Stage> t = it.next();
        out.add(new Sig(t._1(), t._2().file(), t._2().line(), mh.signature(text(t._2().clean()))));
      }
      return out.iterator();
    });
    return sigs.flatMapToPair(s -> {
      List<Tuple2<Long, Sig>> out = new ArrayList<>(bands);
      for (int b = 0; b < bands; b++) {
        out.add(new Tuple2<>(MinHash.bandKey(s.sig(), b, rows), s));
      }
      return out.iterator();
    }).groupByKey().flatMap(bucket -> {
      List<Sig> members = new ArrayList<>();
      bucket._2().forEach(members::add);
      List<String> dups = new ArrayList<>();
      if (members.size() > 1) {
        members.sort((a, b) -> a.file().compareTo(b.file()) != 0 ? a.file().compareTo(b.file())
            : Long.compare(a.line(), b.line()));
        Sig keep = members.get(0);
        for (int i = 1; i < members.size(); i++) {
          if (MinHash.similarity(keep.sig(), members.get(i).sig()) >= threshold) {
            dups.add(members.get(i).id());
          }
        }
      }
      return dups.iterator();
    }).distinct();
  }
}
