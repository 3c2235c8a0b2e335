package ai.lathe.prep;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.types.FloatingPointPrecision;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Spark columns as Hugging Face `datasets` features and Arrow fields: string, int32, int64, bool,
 * float32 and float64 are Value features; arrays are Sequence features (read by datasets 2 to 4)
 * over an Arrow list whose element field is named "item", as pyarrow names it.
 */
final class HfFeatures {
  static final ObjectMapper JSON = new ObjectMapper();

  private HfFeatures() {}

  /** The feature of a Spark type: {"dtype": ..., "_type": "Value"} or {"feature": ..., "_type": "Sequence"}. */
  static ObjectNode feature(DataType t, String column) {
    ObjectNode f = JSON.createObjectNode();
    if (t instanceof ArrayType a) {
      f.set("feature", feature(a.elementType(), column));
      f.put("_type", "Sequence");
      return f;
    }
    f.put("dtype", dtype(t, column));
    f.put("_type", "Value");
    return f;
  }

  private static String dtype(DataType t, String column) {
    if (t.equals(DataTypes.StringType)) {
      return "string";
    } else if (t.equals(DataTypes.IntegerType)) {
      return "int32";
    } else if (t.equals(DataTypes.LongType)) {
      return "int64";
    } else if (t.equals(DataTypes.BooleanType)) {
      return "bool";
    } else if (t.equals(DataTypes.DoubleType)) {
      return "float64";
    } else if (t.equals(DataTypes.FloatType)) {
      return "float32";
    }
    throw new IllegalArgumentException("column '" + column + "' has Spark type " + t.simpleString()
        + ", which the Hugging Face export does not write");
  }

  /** The features of every column, in column order. */
  static ObjectNode features(StructType st) {
    ObjectNode all = JSON.createObjectNode();
    for (StructField f : st.fields()) {
      all.set(f.name(), feature(f.dataType(), f.name()));
    }
    return all;
  }

  /** The Arrow schema of the columns, carrying the features under the "huggingface" metadata key. */
  static Schema arrowSchema(StructType st) {
    List<Field> fields = new ArrayList<>();
    for (StructField f : st.fields()) {
      fields.add(field(f.name(), f.dataType()));
    }
    ObjectNode info = JSON.createObjectNode();
    info.putObject("info").set("features", features(st));
    return new Schema(fields, Map.of("huggingface", info.toString()));
  }

  private static Field field(String name, DataType t) {
    if (t instanceof ArrayType a) {
      return new Field(name, FieldType.nullable(ArrowType.List.INSTANCE), List.of(field("item", a.elementType())));
    }
    String d = dtype(t, name);
    ArrowType at = switch (d) {
      case "string" -> ArrowType.Utf8.INSTANCE;
      case "int32" -> new ArrowType.Int(32, true);
      case "int64" -> new ArrowType.Int(64, true);
      case "bool" -> ArrowType.Bool.INSTANCE;
      case "float32" -> new ArrowType.FloatingPoint(FloatingPointPrecision.SINGLE);
      default -> new ArrowType.FloatingPoint(FloatingPointPrecision.DOUBLE);
    };
    return new Field(name, FieldType.nullable(at), null);
  }

  /** Sets row i of a vector made from arrowSchema to a Spark value (a java.util.List for arrays). */
  static void set(FieldVector v, int i, Object x) {
    if (x == null) {
      v.setNull(i);
    } else if (v instanceof VarCharVector s) {
      s.setSafe(i, ((String) x).getBytes(StandardCharsets.UTF_8));
    } else if (v instanceof IntVector n) {
      n.setSafe(i, (Integer) x);
    } else if (v instanceof BigIntVector n) {
      n.setSafe(i, (Long) x);
    } else if (v instanceof BitVector b) {
      b.setSafe(i, (Boolean) x ? 1 : 0);
    } else if (v instanceof Float8Vector d) {
      d.setSafe(i, (Double) x);
    } else if (v instanceof Float4Vector d) {
      d.setSafe(i, (Float) x);
    } else if (v instanceof ListVector l) {
      List<?> xs = x instanceof scala.collection.Seq<?> s ? scala.jdk.javaapi.CollectionConverters.asJava(s)
          : (List<?>) x;
      int off = l.startNewValue(i);
      for (int j = 0; j < xs.size(); j++) {
        set(l.getDataVector(), off + j, xs.get(j));
      }
      l.endValue(i, xs.size());
    } else {
      throw new IllegalStateException("no writer for " + v.getField());
    }
  }
}
