package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Config;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The pipeline's per-stage overrides keep their YAML values (lists too); a bad enumerated value is named. */
class PipelineStageSetTest {
  private static final Path CONF = Path.of("../conf");
  private static final List<String> CONFIGS = List.of("base.config=../conf/base.yaml", "prep.config=../conf/prep.yaml",
      "sft.config=../conf/sft.yaml", "pairs.config=../conf/prep.yaml", "ref_logps.config=../conf/ref-logps.yaml",
      "dpo.config=../conf/dpo.yaml", "merge.config=../conf/merge.yaml", "eval.config=../conf/eval.yaml",
      "feedback.config=../conf/feedback.yaml");

  private static Config pipeline(String... sets) throws Exception {
    List<String> all = new ArrayList<>(CONFIGS);
    all.addAll(List.of(sets));
    return Config.load(CONF.resolve("pipeline.yaml"), all);
  }

  @Test
  void listsInStageSetsReachTheStage() throws Exception {
    Config c = pipeline("sft.set={lora.target_modules: [q_proj, v_proj], train.max_steps: 3}",
        "merge.sft_set={data_langs: [en, de], lora.r: 4}", "feedback.dpo_set={lora.target_modules: [o_proj]}");
    PipelineCommand.Plan p = PipelineCommand.plan(c);
    assertEquals(List.of("q_proj", "v_proj"), p.sft().strings("lora.target_modules", List.of()));
    assertEquals(3, p.sft().integer("train.max_steps", 0));
    assertEquals(List.of("en", "de"), p.perLang().get(0).strings("data_langs", List.of()));
    assertEquals(4, p.perLang().get(0).integer("lora.r", 8));
    PipelineEval.Plan e = PipelineEval.plan(c, p);
    assertEquals(List.of("o_proj"), e.dpo2().strings("lora.target_modules", List.of()));
  }

  @Test
  void aBadEnumeratedValueInAStageSetNamesThePipelineKey() throws Exception {
    Config c = pipeline("dpo.set={loss.type: sigmoidd}");
    var e = assertThrows(Config.BadValue.class, () -> PipelineCommand.plan(c));
    assertTrue(e.getMessage().startsWith("dpo: 'loss.type' cannot be 'sigmoidd' (in ../conf/pipeline.yaml "
        + "dpo.set.loss.type); allowed: sigmoid, ipo, hinge, robust (did you mean 'sigmoid'?)"), e.getMessage());
  }
}
