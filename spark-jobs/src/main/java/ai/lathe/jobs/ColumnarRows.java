package ai.lathe.jobs;

import java.io.Serializable;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.execution.ColumnarToRowExec;
import org.apache.spark.sql.execution.FileSourceScanExec;
import org.apache.spark.sql.execution.InputAdapter;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.WholeStageCodegenExec;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Reads a Dataset's rows straight from Spark's internal representation into Java records, without
 * building a {@link Row} per row or boxing a list element: token arrays are copied out of the
 * column vectors with one bulk copy each ({@code getArray(c).toIntArray()}).
 *
 * <p>When the physical plan is a columnar scan under a plain columnar-to-row conversion (Parquet's
 * vectorized reader, partition filters pruned into the scan), the scan's {@link ColumnarBatch}es
 * are read directly; any other plan (a filter on data columns, a join, a computed column) is read
 * through its {@link InternalRow}s, which still copies arrays in bulk.
 */
final class ColumnarRows {
  private ColumnarRows() {}

  /** A record built from one row, reading columns by their ordinals (in the order asked for). */
  @FunctionalInterface
  interface Reader<T> extends Serializable {
    T read(InternalRow row, int[] col);
  }

  /** How the rows were read: for tests and logs. */
  enum Path { COLUMNAR_BATCHES, INTERNAL_ROWS }

  static Path path(Dataset<Row> df) {
    return scan(df) != null ? Path.COLUMNAR_BATCHES : Path.INTERNAL_ROWS;
  }

  /** The physical plan, for messages. */
  static String plan(Dataset<Row> df) {
    return qe(df).executedPlan().toString();
  }

  /** Maps every row of df to a record; {@code columns} name what the reader's ordinals refer to. */
  static <T> JavaRDD<T> map(Dataset<Row> df, List<String> columns, Reader<T> reader) {
    SparkPlan scan = scan(df);
    if (scan != null) {
      int[] col = ordinals(scan.output(), columns);
      JavaRDD<ColumnarBatch> batches = scan.executeColumnar().toJavaRDD();
      return batches.mapPartitions(it -> new BatchRows<>(it, reader, col));
    }
    int[] col = ordinals(qe(df).executedPlan().output(), columns);
    JavaRDD<InternalRow> rows = qe(df).toRdd().toJavaRDD();
    return rows.map((Function<InternalRow, T>) r -> reader.read(r, col));
  }

  static org.apache.spark.sql.execution.QueryExecution qe(Dataset<Row> df) {
    return ((org.apache.spark.sql.classic.Dataset<Row>) df).queryExecution();
  }

  /** The columnar scan when the plan is exactly [codegen] → columnar-to-row → [input] → columnar scan. */
  static SparkPlan scan(Dataset<Row> df) {
    SparkPlan p = qe(df).executedPlan();
    if (p instanceof WholeStageCodegenExec w) {
      p = w.child();
    }
    if (!(p instanceof ColumnarToRowExec c)) {
      return null;
    }
    SparkPlan s = c.child() instanceof InputAdapter in ? in.child() : c.child();
    return s instanceof FileSourceScanExec && s.supportsColumnar() && s.output().equals(c.output()) ? s : null;
  }

  static int[] ordinals(scala.collection.immutable.Seq<Attribute> output, List<String> columns) {
    List<Attribute> attrs = scala.jdk.javaapi.CollectionConverters.asJava(output);
    int[] col = new int[columns.size()];
    for (int i = 0; i < col.length; i++) {
      col[i] = -1;
      for (int j = 0; j < attrs.size(); j++) {
        if (attrs.get(j).name().equals(columns.get(i))) {
          col[i] = j;
        }
      }
      if (col[i] < 0) {
        throw new IllegalArgumentException("prepared data has no column '" + columns.get(i) + "' (has "
            + attrs.stream().map(Attribute::name).toList() + ")");
      }
    }
    return col;
  }

  /** The rows of a partition's batches, each read through the batch's row view of its vectors. */
  private static final class BatchRows<T> implements Iterator<T> {
    private final Iterator<ColumnarBatch> batches;
    private final Reader<T> reader;
    private final int[] col;
    private ColumnarBatch batch;
    private int next;

    BatchRows(Iterator<ColumnarBatch> batches, Reader<T> reader, int[] col) {
      this.batches = batches;
      this.reader = reader;
      this.col = col;
    }

    @Override
    public boolean hasNext() {
      // the reader reuses its vectors: a batch is consumed completely before the next is loaded
      while (batch == null || next >= batch.numRows()) {
        if (!batches.hasNext()) {
          return false;
        }
        batch = batches.next();
        next = 0;
      }
      return true;
    }

    @Override
    public T next() {
      if (!hasNext()) {
        throw new java.util.NoSuchElementException();
      }
      return reader.read(batch.getRow(next++), col);
    }
  }
}
