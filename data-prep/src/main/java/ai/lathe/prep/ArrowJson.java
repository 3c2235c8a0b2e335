package ai.lathe.prep;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.vector.BaseIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float2Vector;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.LargeVarCharVector;
import org.apache.arrow.vector.UInt8Vector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.complex.LargeListVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.types.pojo.Field;

/**
 * Arrow rows as JSON objects, the form every prep format reads: struct → object, list (also large
 * and fixed-size lists and maps, as arrays of {key, value}) → array, strings → strings, integers,
 * floats and decimals → numbers, booleans, nulls → null; dates and times → their ISO text.
 * Columns of other types (binary, unions, dictionary-encoded) are left out of the object.
 */
final class ArrowJson {
  private static final JsonFactory JSON = new JsonFactory();

  private ArrowJson() {}

  /** Whether a field (and every field under it) converts to JSON. */
  static boolean supported(Field f) {
    if (f.getDictionary() != null) {
      return false;
    }
    return switch (f.getType().getTypeID()) {
      case Null, Int, FloatingPoint, Decimal, Bool, Utf8, LargeUtf8, Date, Time, Timestamp -> true;
      case Struct, List, LargeList, FixedSizeList, Map -> f.getChildren().stream().allMatch(ArrowJson::supported);
      default -> false;
    };
  }

  /** The columns of a batch that convert (in schema order). */
  static List<FieldVector> columns(VectorSchemaRoot root) {
    List<FieldVector> out = new ArrayList<>();
    for (FieldVector v : root.getFieldVectors()) {
      if (supported(v.getField())) {
        out.add(v);
      }
    }
    return out;
  }

  /** Row i of the given columns as UTF-8 JSON (strings copied as their bytes, so bad UTF-8 stays bad). */
  static byte[] row(List<FieldVector> columns, int i) throws IOException {
    ByteArrayOutputStream buf = new ByteArrayOutputStream(256);
    try (JsonGenerator g = JSON.createGenerator(buf, JsonEncoding.UTF8)) {
      g.writeStartObject();
      for (FieldVector v : columns) {
        g.writeFieldName(v.getName());
        value(v, i, g);
      }
      g.writeEndObject();
    }
    return buf.toByteArray();
  }

  static void value(ValueVector v, int i, JsonGenerator g) throws IOException {
    if (v.isNull(i)) {
      g.writeNull();
    } else if (v instanceof VarCharVector s) {
      byte[] b = s.get(i);
      g.writeUTF8String(b, 0, b.length);
    } else if (v instanceof LargeVarCharVector s) {
      byte[] b = s.get(i);
      g.writeUTF8String(b, 0, b.length);
    } else if (v instanceof BitVector b) {
      g.writeBoolean(b.get(i) != 0);
    } else if (v instanceof UInt8Vector u) {
      g.writeNumber(u.getObjectNoOverflow(i));
    } else if (v instanceof BaseIntVector n) {
      g.writeNumber(n.getValueAsLong(i));
    } else if (v instanceof Float8Vector d) {
      g.writeNumber(d.get(i));
    } else if (v instanceof Float4Vector d) {
      g.writeNumber(d.get(i));
    } else if (v instanceof Float2Vector d) {
      g.writeNumber(d.getValueAsFloat(i));
    } else if (v instanceof StructVector s) {
      g.writeStartObject();
      for (FieldVector c : s.getChildrenFromFields()) {
        g.writeFieldName(c.getName());
        value(c, i, g);
      }
      g.writeEndObject();
    } else if (v instanceof ListVector l) { // also MapVector: entries as {key, value} objects
      elements(l.getDataVector(), l.getElementStartIndex(i), l.getElementEndIndex(i), g);
    } else if (v instanceof LargeListVector l) {
      elements(l.getDataVector(), Math.toIntExact(l.getElementStartIndex(i)),
          Math.toIntExact(l.getElementEndIndex(i)), g);
    } else if (v instanceof FixedSizeListVector l) {
      elements(l.getDataVector(), i * l.getListSize(), (i + 1) * l.getListSize(), g);
    } else {
      // decimals as numbers; dates, times, timestamps (the other types supported() lets through) as text
      Object o = v.getObject(i);
      if (o instanceof java.math.BigDecimal d) {
        g.writeNumber(d);
      } else {
        g.writeString(String.valueOf(o));
      }
    }
  }

  private static void elements(ValueVector child, int from, int to, JsonGenerator g) throws IOException {
    g.writeStartArray();
    for (int j = from; j < to; j++) {
      value(child, j, g);
    }
    g.writeEndArray();
  }
}
