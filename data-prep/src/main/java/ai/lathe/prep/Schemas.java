package ai.lathe.prep;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** Parquet schemas of prepared data, with hand-written row ↔ record functions. */
public final class Schemas {
  /** Prepared SFT data; bump when columns change meaning (2: position_ids for packed rows). */
  public static final int SFT_SCHEMA_VERSION = 2;

  public static final StructType SFT = new StructType()
      .add("id", DataTypes.StringType, false)
      .add("source_id", DataTypes.StringType, false)
      .add("lang", DataTypes.StringType, false)
      .add("split", DataTypes.StringType, false)
      .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
      .add("loss_mask", DataTypes.createArrayType(DataTypes.BooleanType, false), false)
      .add("position_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
      .add("num_tokens", DataTypes.IntegerType, false)
      .add("num_loss_tokens", DataTypes.IntegerType, false)
      .add("truncated", DataTypes.BooleanType, false);

  /** Prepared preference pairs (full sequences; completions start at the given index). */
  public static final int PREFERENCE_SCHEMA_VERSION = 1;

  public static final StructType PREFERENCE = new StructType()
      .add("id", DataTypes.StringType, false)
      .add("source_id", DataTypes.StringType, false)
      .add("lang", DataTypes.StringType, false)
      .add("split", DataTypes.StringType, false)
      .add("chosen_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
      .add("chosen_start", DataTypes.IntegerType, false)
      .add("rejected_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
      .add("rejected_start", DataTypes.IntegerType, false)
      .add("constructed", DataTypes.BooleanType, false);

  /** Prepared KTO rows. */
  public static final int KTO_SCHEMA_VERSION = 1;

  public static final StructType KTO = new StructType()
      .add("id", DataTypes.StringType, false)
      .add("source_id", DataTypes.StringType, false)
      .add("lang", DataTypes.StringType, false)
      .add("split", DataTypes.StringType, false)
      .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
      .add("completion_start", DataTypes.IntegerType, false)
      .add("label", DataTypes.BooleanType, false);

  public static final StructType REJECTS = new StructType()
      .add("file", DataTypes.StringType, false)
      .add("line", DataTypes.LongType, false)
      .add("reason", DataTypes.StringType, false)
      .add("raw", DataTypes.StringType, true);

  private Schemas() {}

  public static Row toRow(PreparedRow r) {
    List<Integer> ids = new ArrayList<>(r.inputIds().length);
    for (int x : r.inputIds()) {
      ids.add(x);
    }
    List<Boolean> mask = new ArrayList<>(r.lossMask().length);
    for (boolean b : r.lossMask()) {
      mask.add(b);
    }
    return RowFactory.create(r.id(), r.sourceId(), r.lang(), r.split(), seq(ids), seq(mask), ints(r.positionIds()),
        r.numTokens(),
        r.numLossTokens(), r.truncated());
  }

  static scala.collection.immutable.Seq<Integer> ints(int[] a) {
    List<Integer> l = new ArrayList<>(a.length);
    for (int x : a) {
      l.add(x);
    }
    return seq(l);
  }

  public static Row toRow(PreferenceRows.TokenPair p) {
    return RowFactory.create(p.id(), p.sourceId(), p.lang(), p.split(), ints(p.chosenIds()), p.chosenStart(),
        ints(p.rejectedIds()), p.rejectedStart(), p.constructed());
  }

  public static Row toRow(PreferenceRows.TokenLabeled k) {
    return RowFactory.create(k.id(), k.sourceId(), k.lang(), k.split(), ints(k.inputIds()), k.completionStart(),
        k.label());
  }

  /** Spark rows carry arrays as Scala sequences. */
  public static <T> scala.collection.immutable.Seq<T> seq(List<T> list) {
    return scala.jdk.javaapi.CollectionConverters.asScala(list).toList();
  }

  /** Reads a prepared row by column name (partition columns may come last). */
  public static PreparedRow fromRow(Row row) {
    List<Integer> ids = row.getList(row.fieldIndex("input_ids"));
    List<Boolean> mask = row.getList(row.fieldIndex("loss_mask"));
    int[] a = new int[ids.size()];
    boolean[] m = new boolean[mask.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = ids.get(i);
      m[i] = mask.get(i);
    }
    List<Integer> pl = row.getList(row.fieldIndex("position_ids"));
    int[] pos = new int[pl.size()];
    for (int i = 0; i < pos.length; i++) {
      pos[i] = pl.get(i);
    }
    return new PreparedRow(row.getAs("id"), row.getAs("source_id"), row.getAs("lang"), row.getAs("split"), a, m, pos,
        row.<Integer>getAs("num_tokens"), row.<Integer>getAs("num_loss_tokens"), row.<Boolean>getAs("truncated"));
  }
}
