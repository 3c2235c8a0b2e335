package ai.lathe.jobs;

import ai.lathe.model.cli.Main;
import java.util.LinkedHashMap;
import java.util.Map;

/** bin/lathe's entry point: every command, the Spark jobs and the engine-only ones. */
public final class Lathe {
  private Lathe() {}

  public static Map<String, Main.Command> commands() {
    Map<String, Main.Command> all = new LinkedHashMap<>(Main.COMMANDS);
    all.put("prep", new Main.Command(ai.lathe.prep.PrepJob.USAGE,
        a -> ai.lathe.prep.JobMain.run("prep", a, ai.lathe.prep.PrepJob.USAGE, ai.lathe.prep.PrepJob::outputs,
            ai.lathe.prep.PrepJob::run)));
    all.put("export-hf", new Main.Command(ai.lathe.prep.HfExport.USAGE, ai.lathe.prep.HfExport::run));
    all.put("sft", new Main.Command(SftTrainJob.USAGE,
        a -> ai.lathe.prep.JobMain.run("sft", a, SftTrainJob.USAGE, JobOutputs::sft, SftTrainJob::run)));
    all.put("merge", new Main.Command(ai.lathe.merge.MergeCommand.USAGE, ai.lathe.merge.MergeCommand::run));
    all.put("cost", new Main.Command(ai.lathe.merge.CostCommand.USAGE, ai.lathe.merge.CostCommand::run));
    all.put("dpo", new Main.Command(DpoTrainJob.USAGE,
        a -> ai.lathe.prep.JobMain.run("dpo", a, DpoTrainJob.USAGE, (c, h) -> JobOutputs.pref(c, "dpo"),
            (sp, c) -> PrefTrainJob.run(sp, c, "dpo"))));
    all.put("kto", new Main.Command(KtoTrainJob.USAGE,
        a -> ai.lathe.prep.JobMain.run("kto", a, KtoTrainJob.USAGE, (c, h) -> JobOutputs.pref(c, "kto"),
            (sp, c) -> PrefTrainJob.run(sp, c, "kto"))));
    all.put("ref-logps", new Main.Command(RefLogpsJob.USAGE,
        a -> ai.lathe.prep.JobMain.run("ref-logps", a, RefLogpsJob.USAGE, (c, h) -> JobOutputs.refLogps(c),
            RefLogpsJob::run)));
    all.put("merge-job", new Main.Command(MergeJob.USAGE,
        a -> ai.lathe.prep.JobMain.run("merge-job", a, MergeJob.USAGE, (c, h) -> JobOutputs.mergeJob(c),
            MergeJob::run)));
    all.put("eval", new Main.Command(EvalJob.USAGE,
        a -> ai.lathe.prep.JobMain.run("eval", a, EvalJob.USAGE, (c, h) -> EvalJob.outputs(c), EvalJob::run)));
    all.put("feedback", new Main.Command(FeedbackJob.USAGE,
        a -> ai.lathe.prep.JobMain.run("feedback", a, FeedbackJob.USAGE, (c, h) -> FeedbackJob.outputs(c),
            FeedbackJob::run)));
    all.put("bench-merge", new Main.Command(ai.lathe.merge.BenchMergeCommand.USAGE,
        ai.lathe.merge.BenchMergeCommand::run));
    all.put("bench-prep", new Main.Command(PrepBenchCommand.USAGE, PrepBenchCommand::run));
    all.put("bench-sft", new Main.Command(SparkBenchCommand.USAGE, SparkBenchCommand::run));
    all.put("pipeline", new Main.Command(PipelineCommand.USAGE, PipelineCommand::run));
    all.put("compare-modes", new Main.Command(CompareModesCommand.USAGE, CompareModesCommand::run));
    return all;
  }

  public static void main(String[] argv) {
    LogLocation.apply(argv); // before anything logs: log4j reads the file name once
    MemoryLog.startIfAsked(); // -Dlathe.memlog=FILE: RSS, heap and off-heap once a second
    System.exit(Main.dispatch(argv, commands()));
  }
}
