package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.eval.Calibration;
import ai.lathe.model.eval.Outcome;
import ai.lathe.prep.HadoopIo;
import ai.lathe.prep.Schemas;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** The eval's output folder, written to a hidden sibling and renamed into place. */
final class EvalOutput {
  private EvalOutput() {}

  static final StructType ITEMS = new StructType()
      .add("id", DataTypes.StringType, false)
      .add("lang", DataTypes.StringType, false)
      .add("prompt", DataTypes.StringType, false)
      .add("prompt_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
      .add("candidate_answer", DataTypes.StringType, false)
      .add("candidate_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
      .add("candidate_finish", DataTypes.StringType, false)
      .add("baseline_answer", DataTypes.StringType, false)
      .add("baseline_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
      .add("baseline_finish", DataTypes.StringType, false)
      .add("p_a_candidate_first", DataTypes.DoubleType, false)
      .add("p_a_baseline_first", DataTypes.DoubleType, false)
      .add("candidate_preference", DataTypes.DoubleType, false)
      .add("outcome", DataTypes.StringType, false)
      .add("raw_outcome", DataTypes.StringType, false)
      .add("judge_score", DataTypes.DoubleType, false)
      .add("position_bias", DataTypes.DoubleType, false)
      .add("candidate_length", DataTypes.IntegerType, false)
      .add("baseline_length", DataTypes.IntegerType, false)
      .add("candidate_tokens", DataTypes.IntegerType, false)
      .add("baseline_tokens", DataTypes.IntegerType, false);

  /**
   * One item's row: outcome and candidate_preference under the eval's calibration, raw_outcome
   * under none (agreeing orders), judge_score s and position_bias b in log-odds (Calibration).
   */
  static Row row(EvalWorker.Judged j, Calibration cal) {
    double p1 = j.pACandidateFirst();
    double p2 = j.pABaselineFirst();
    return RowFactory.create(j.id(), j.lang(), j.prompt(), ints(j.promptIds()), j.candidate(), ints(j.candidateIds()),
        j.candidateFinish(), j.baseline(), ints(j.baselineIds()), j.baselineFinish(), p1, p2, cal.preference(p1, p2),
        cal.decide(p1, p2).word(), Outcome.of(p1, p2).word(), Calibration.score(p1, p2),
        Calibration.positionBias(p1, p2), j.candidate().length(), j.baseline().length(), j.candidateIds().length,
        j.baselineIds().length);
  }

  static scala.collection.immutable.Seq<Integer> ints(int[] a) {
    List<Integer> l = new ArrayList<>(a.length);
    for (int x : a) {
      l.add(x);
    }
    return Schemas.seq(l);
  }

  static void write(SparkSession spark, EvalSettings s, Config c, ObjectNode summary, List<EvalWorker.Judged> judged,
      Configuration hconf) throws Exception {
    ObjectMapper om = new ObjectMapper();
    String tmp = HadoopIo.tempSibling(s.output());
    Path local = Files.createTempDirectory("lathe-eval");
    try {
      List<Row> rows = new ArrayList<>();
      judged.forEach(j -> rows.add(row(j, s.calibration())));
      spark.createDataFrame(rows, ITEMS).coalesce(1).write().mode(SaveMode.ErrorIfExists).parquet(tmp + "/items");
      HadoopIo.writeString(tmp + "/summary.json", om.writerWithDefaultPrettyPrinter().writeValueAsString(summary), hconf);
      ObjectNode run = om.createObjectNode();
      run.put("kind", "eval");
      run.put("code_version", ai.lathe.model.Version.get());
      run.put("items", judged.size());
      run.set("config", c.root());
      HadoopIo.writeString(tmp + "/lathe-eval.json", om.writerWithDefaultPrettyPrinter().writeValueAsString(run), hconf);
      Map<String, double[]> rates = new LinkedHashMap<>();
      rates.put("all", rates(summary.path("overall")));
      summary.path("per_lang").fields().forEachRemaining(e -> rates.put(e.getKey(), rates(e.getValue())));
      Path png = local.resolve("winrate.png");
      WinRatePlot.write(png, "win rate vs " + s.baselineKind() + " (judge " + Path.of(s.judgeModel()).getFileName()
          + ")", rates);
      org.apache.hadoop.fs.Path dst = new org.apache.hadoop.fs.Path(tmp + "/winrate.png");
      dst.getFileSystem(hconf).copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(png.toUri()), dst);
      HadoopIo.commit(tmp, s.output(), hconf);
    } catch (Exception e) {
      HadoopIo.deleteQuietly(tmp, hconf);
      throw e;
    } finally {
      ai.lathe.model.io.AtomicDir.deleteTree(local);
    }
  }

  private static double[] rates(com.fasterxml.jackson.databind.JsonNode n) {
    var ci = n.path("win_rate_ci95");
    return new double[] {n.path("win_rate").asDouble(Double.NaN), orNaN(ci.path(0)), orNaN(ci.path(1)),
        n.path("length_controlled_win_rate").asDouble(Double.NaN)};
  }

  /** A statistic written as null (undefined) is NaN, not Jackson's 0 for a null node. */
  private static double orNaN(com.fasterxml.jackson.databind.JsonNode v) {
    return v.isNumber() ? v.asDouble() : Double.NaN;
  }
}
