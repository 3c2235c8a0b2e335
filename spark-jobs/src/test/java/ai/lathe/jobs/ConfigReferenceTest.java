package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.merge.MergeConfig;
import ai.lathe.model.Config;
import ai.lathe.model.cli.Args;
import ai.lathe.model.cli.SftCommand;
import ai.lathe.model.config.ConfigReference;
import ai.lathe.model.config.JobKeys;
import ai.lathe.model.config.KeySpec;
import ai.lathe.prep.JobMain;
import ai.lathe.prep.PrepJob;
import ai.lathe.prep.PrepOptions;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;

/**
 * The code and the reference agree: every job's settings parsing, run on the shipped conf/*.yaml,
 * reads only keys the reference lists (with the listed defaults), and reads every listed key; a
 * typo in a file, a --set or a --flag fails the job with exit 2 before a Spark session exists.
 */
class ConfigReferenceTest {
  private static final Path CONF = Path.of("../conf");

  /** Loads a shipped config, checked against the job's keys as JobMain does. */
  private static Config shipped(String file, JobKeys keys, String... sets) throws Exception {
    return Config.load(CONF.resolve(file), List.of(sets)).validate(keys);
  }

  /** Runs each job's parsing and returns the keys it read, with the defaults it passed. */
  private static Map<String, Map<String, Object>> readsPerJob() throws Exception {
    Map<String, Map<String, Object>> out = new LinkedHashMap<>();
    Config prep = shipped("prep.yaml", ConfigReference.PREP);
    PrepOptions.from(prep);
    PrepJob.stageOf(prep);
    out.put("prep", prep.reads());
    Config sft = shipped("sft.yaml", ConfigReference.SFT);
    SftSettings.from(sft);
    out.put("sft", sft.reads());
    for (String kind : List.of("dpo", "kto")) {
      Config c = shipped(kind + ".yaml", ConfigReference.of(kind));
      c.root().remove("adapter"); // a fresh LoRA: lora.* is read (the shipped adapter folder does not exist here)
      PrefSettings.from(c, kind);
      out.put(kind, c.reads());
    }
    Config ref = shipped("ref-logps.yaml", ConfigReference.REF_LOGPS);
    RefLogpsJob.Settings.from(ref);
    out.put("ref-logps", ref.reads());
    Config merge = shipped("merge.yaml", ConfigReference.MERGE);
    MergeConfig.from(merge);
    out.put("merge", merge.reads());
    Config mergeJob = shipped("merge.yaml", ConfigReference.MERGE_JOB, "gate.data=d");
    MergeJob.Settings.from(mergeJob);
    out.put("merge-job", mergeJob.reads());
    Config local = shipped("sft-local.yaml", ConfigReference.SFT_LOCAL);
    SftCommand.Settings.from(local);
    out.put("sft-local", local.reads());
    Config eval = shipped("eval.yaml", ConfigReference.EVAL);
    EvalSettings.from(eval);
    out.put("eval", eval.reads());
    Config feedback = shipped("feedback.yaml", ConfigReference.FEEDBACK);
    FeedbackJob.Settings.from(feedback);
    out.put("feedback", feedback.reads());
    Config pipeline = shipped("pipeline.yaml", ConfigReference.PIPELINE, "base.config=../conf/base.yaml", "prep.config=../conf/prep.yaml",
        "sft.config=../conf/sft.yaml", "pairs.config=../conf/prep.yaml", "ref_logps.config=../conf/ref-logps.yaml",
        "dpo.config=../conf/dpo.yaml", "merge.config=../conf/merge.yaml", "eval.config=../conf/eval.yaml",
        "feedback.config=../conf/feedback.yaml");
    PipelineEval.plan(pipeline, PipelineCommand.plan(pipeline)); // also checks every stage's config and overrides
    out.put("pipeline", pipeline.reads());
    return out;
  }

  @Test
  void everyKeyTheCodeReadsIsInTheReferenceWithItsDefault() throws Exception {
    List<String> problems = new ArrayList<>();
    readsPerJob().forEach((job, reads) -> {
      JobKeys keys = ConfigReference.of(job);
      reads.forEach((key, dflt) -> {
        KeySpec k = keys.get(key);
        if (k == null && keys.hasChildren(key)) {
          return; // a section's presence (e.g. gate)
        }
        if (k == null) {
          problems.add(job + ": reads '" + key + "', not in ConfigReference");
        } else if (dflt != null && !k.dflt().startsWith("(") && !KeySpec.render(dflt).equals(k.dflt())) {
          problems.add(job + ": '" + key + "' defaults to " + KeySpec.render(dflt) + " in the code, " + k.dflt()
              + " in the reference");
        }
      });
    });
    assertTrue(problems.isEmpty(), String.join("\n", problems));
  }

  @Test
  void everyReferenceKeyIsRead() throws Exception {
    List<String> unread = new ArrayList<>();
    readsPerJob().forEach((job, reads) -> {
      // read by the output guard before the job's settings (JobOutputs, PrepJob.outputs, SftCommand.outputs)
      reads.putIfAbsent("overwrite", false);
      if (job.equals("prep") || job.equals("feedback")) {
        reads.putIfAbsent("allow_empty", false);
      }
      for (KeySpec k : ConfigReference.of(job).keys()) {
        // fields of listed objects are read from the list's node
        String key = k.key().contains("[]") ? k.key().substring(0, k.key().indexOf("[]")) : k.key();
        if (!reads.containsKey(key)) {
          unread.add(job + ": " + k.key());
        }
      }
    });
    assertTrue(unread.isEmpty(), "listed but never read: " + unread);
    assertEquals(new TreeSet<>(ConfigReference.JOBS.keySet()), new TreeSet<>(readsPerJob().keySet()));
  }

  private static int runQuietly(String job, String... argv) {
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true));
    int code;
    try {
      code = JobMain.run(job, argv, "usage", (spark, c) -> {
        throw new AssertionError("the job body must not run");
      });
    } finally {
      System.setErr(err);
    }
    LAST_ERR.setLength(0);
    LAST_ERR.append(buf);
    return code;
  }

  private static final StringBuilder LAST_ERR = new StringBuilder();

  @Test
  void aTypoFailsTheJobWithExitTwoBeforeSparkStarts() throws Exception {
    assertTrue(SparkSession.getDefaultSession().isEmpty(), "another test left a session");
    Path sftYaml = CONF.resolve("sft.yaml");
    assertEquals(2, runQuietly("sft", "--config", sftYaml.toString(), "--set", "lora.rnak=4"));
    assertTrue(LAST_ERR.toString().contains("unknown key 'lora.rnak' in --set lora.rnak=4 (did you mean 'lora.r'?)"),
        LAST_ERR.toString());
    assertEquals(2, runQuietly("prep", "--config", CONF.resolve("prep.yaml").toString(), "--ouput", "x"));
    assertTrue(LAST_ERR.toString().contains("unknown key 'ouput' in --ouput (did you mean 'output'?)"),
        LAST_ERR.toString());
    java.nio.file.Path bad = java.nio.file.Files.createTempFile(Path.of("target"), "dpo", ".yaml");
    try {
      java.nio.file.Files.writeString(bad, java.nio.file.Files.readString(CONF.resolve("dpo.yaml"))
          .replace("label_smoothing:", "label_smothing:"));
      assertEquals(2, runQuietly("dpo", "--config", bad.toString()));
      assertTrue(LAST_ERR.toString().contains("unknown key 'loss.label_smothing' in " + bad
          + " (did you mean 'loss.label_smoothing'?)"), LAST_ERR.toString());
    } finally {
      java.nio.file.Files.delete(bad);
    }
    // KTO's weights are not DPO's keys, and merge-job takes the gate merge does not
    assertEquals(2, runQuietly("dpo", "--config", CONF.resolve("dpo.yaml").toString(), "--set",
        "loss.desirable_weight=2"));
    assertEquals(2, runQuietly("merge-job", "--config", CONF.resolve("merge.yaml").toString(), "--set",
        "gate.dat=x"));
    assertTrue(LAST_ERR.toString().contains("did you mean 'gate.data'?"), LAST_ERR.toString());
    assertTrue(SparkSession.getDefaultSession().isEmpty() && SparkSession.getActiveSession().isEmpty(),
        "a Spark session was started");
  }

  @Test
  void everyShippedConfigPassesItsJobsCheck() throws Exception {
    Map<String, String> files = new java.util.HashMap<>(Map.of("prep", "prep.yaml", "sft", "sft.yaml", "dpo", "dpo.yaml", "kto", "kto.yaml",
        "ref-logps", "ref-logps.yaml", "merge", "merge.yaml", "merge-job", "merge.yaml", "sft-local", "sft-local.yaml",
        "pipeline", "pipeline.yaml"));
    files.put("eval", "eval.yaml");
    files.put("feedback", "feedback.yaml");
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true));
    try {
      files.forEach((job, file) -> {
        try {
          JobMain.config(job, new String[] {"--config", CONF.resolve(file).toString()});
        } catch (Exception e) {
          throw new AssertionError(job + ": " + e.getMessage(), e);
        }
      });
    } finally {
      System.setErr(err);
    }
    assertEquals("", buf.toString(), "the shipped configs use deprecated keys");
  }

  @Test
  void aTypoInAPipelineStageOverrideNamesThePipelineKey() throws Exception {
    Config c = Config.load(CONF.resolve("pipeline.yaml"), List.of("base.config=../conf/base.yaml", "prep.config=../conf/prep.yaml",
        "sft.config=../conf/sft.yaml", "pairs.config=../conf/prep.yaml", "ref_logps.config=../conf/ref-logps.yaml",
        "dpo.config=../conf/dpo.yaml", "merge.config=../conf/merge.yaml", "sft.set={train.max_stesp: 3}"));
    var e = assertThrows(Args.UsageException.class, () -> PipelineCommand.plan(c));
    assertTrue(e.getMessage().contains("sft: unknown key 'train.max_stesp' in ../conf/pipeline.yaml sft.set.train.max_stesp"
        + " (did you mean 'train.max_steps'?)"), e.getMessage());
  }
}
