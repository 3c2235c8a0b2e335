package ai.lathe.prep;

import ai.lathe.model.text.ChatTemplate.Message;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import scala.Tuple2;

/**
 * The intermediate output of the clean stage (validated, normalised, deduplicated, split rows,
 * before templating and tokenisation), so tokenisation can be rerun alone, e.g. with another
 * template or max_length.
 */
public final class CleanStore {
  public static final int SCHEMA_VERSION = 1;

  public static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.StringType, false)
      .add("source_id", DataTypes.StringType, false)
      .add("lang", DataTypes.StringType, false)
      .add("split", DataTypes.StringType, false)
      .add("replay", DataTypes.BooleanType, false)
      .add("roles", DataTypes.createArrayType(DataTypes.StringType, false), false)
      .add("contents", DataTypes.createArrayType(DataTypes.StringType, false), false)
      .add("file", DataTypes.StringType, false)
      .add("line", DataTypes.LongType, false);

  private CleanStore() {}

  static Row toRow(PrepJob.Stage s, double valFraction) {
    List<String> roles = new ArrayList<>();
    List<String> contents = new ArrayList<>();
    for (Message m : s.clean().messages()) {
      roles.add(m.role());
      contents.add(m.content());
    }
    boolean replay = PrepJob.REPLAY.equals(s.raw());
    String split = replay ? "train" : RowTransforms.split(s.clean().id(), valFraction);
    return RowFactory.create(s.clean().id(), s.clean().sourceId(), s.clean().lang(), split, replay,
        Schemas.seq(roles), Schemas.seq(contents), s.file(), s.line());
  }

  /** The cleaned rows keyed by content id, as the tokenise step takes them. */
  static JavaPairRDD<String, PrepJob.Stage> read(SparkSession spark, String dir) {
    return spark.read().parquet(dir + "/data").javaRDD().mapToPair(r -> {
      List<String> roles = r.getList(r.fieldIndex("roles"));
      List<String> contents = r.getList(r.fieldIndex("contents"));
      List<Message> ms = new ArrayList<>();
      for (int i = 0; i < roles.size(); i++) {
        ms.add(new Message(roles.get(i), contents.get(i)));
      }
      RowTransforms.Clean c = new RowTransforms.Clean(r.getAs("id"), r.getAs("source_id"), r.getAs("lang"), ms);
      boolean replay = r.getAs("replay");
      return new Tuple2<>(c.id(), new PrepJob.Stage(r.getAs("file"), r.<Long>getAs("line"), c, null,
          replay ? PrepJob.REPLAY : null));
    });
  }
}
