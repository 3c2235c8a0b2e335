package ai.lathe.jobs;

import ai.lathe.model.LlamaConfig;
import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;

/**
 * The fixture the job tests share, one test class at a time: an embedded session, a scratch folder
 * and a random model of the class's shape in it. A subclass opens it in its @BeforeAll (and adds its
 * data); it is closed after the class's tests.
 */
abstract class JobFixture {
  static SparkSession spark;
  static Path dir;
  static Path model; // dir/model

  /** Opens the fixture: the session's app name, the scratch folder's prefix, the model's shape. */
  static void open(String appName, String prefix, LlamaConfig c) throws Exception {
    spark = JobFixtures.spark(appName);
    dir = JobFixtures.scratch(prefix);
    model = JobFixtures.randomModel(dir, c);
  }

  @AfterAll
  static void closeFixture() throws Exception {
    JobFixtures.close(spark, dir);
  }
}
