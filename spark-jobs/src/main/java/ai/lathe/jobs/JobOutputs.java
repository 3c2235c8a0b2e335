package ai.lathe.jobs;

import ai.lathe.merge.MergeConfig;
import ai.lathe.model.Config;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.io.OutputGuard.Input;
import ai.lathe.model.io.OutputGuard.Kind;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;

/**
 * What each Spark job writes and reads, for {@link OutputGuard}: checked (and the output locked)
 * by JobMain before Spark starts, checked again by the jobs' run() for callers such as the
 * pipeline.
 */
final class JobOutputs {
  private JobOutputs() {}

  static OutputGuard.Spec sft(Config c, Configuration hconf) {
    SftSettings s = SftSettings.from(c);
    return new OutputGuard.Spec("sft", s.output(), s.mode().full() ? Kind.TRAINED_MODEL : Kind.ADAPTER,
        c.bool("overwrite", false),
        List.of(Input.of("model", s.model()), Input.of("data", s.data())), List.of(s.checkpointDir()));
  }

  static OutputGuard.Spec pref(Config c, String kind) throws java.io.IOException {
    PrefSettings s = PrefSettings.from(c, kind);
    List<Input> in = new ArrayList<>(List.of(Input.of("model", s.model()), Input.of("data", s.data())));
    if (s.adapter() != null) {
      in.add(Input.of("adapter", s.adapter()));
    }
    if (s.referenceAdapter() != null) {
      in.add(Input.of("reference adapter", s.referenceAdapter()));
    }
    return new OutputGuard.Spec(kind, s.output(), s.mode().full() ? Kind.TRAINED_MODEL : Kind.ADAPTER,
        c.bool("overwrite", false), in,
        List.of(s.checkpointDir()));
  }

  /** ref-logps rewrites its data in place atomically when output = data (by design), nothing else overlaps. */
  static OutputGuard.Spec refLogps(Config c) {
    List<Input> in = new ArrayList<>(List.of(Input.of("model", c.need("model")),
        new Input("data", c.need("data"), true)));
    String ref = c.str("reference.adapter", c.str("reference_adapter", null));
    if (ref != null) {
      in.add(Input.of("reference adapter", ref));
    }
    return new OutputGuard.Spec("ref-logps", c.need("output"), Kind.PREPARED, c.bool("overwrite", false), in);
  }

  static OutputGuard.Spec mergeJob(Config c) {
    OutputGuard.Spec s = MergeConfig.outputs(MergeConfig.from(c), c, "merge-job");
    if (c.str("gate.data", null) == null) {
      return s;
    }
    List<Input> in = new ArrayList<>(s.inputs());
    in.add(Input.of("gate data", c.need("gate.data")));
    return new OutputGuard.Spec(s.command(), s.output(), s.kind(), s.overwrite(), in);
  }
}
