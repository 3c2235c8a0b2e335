package ai.lathe.jobs;

import ai.lathe.model.Config;
import ai.lathe.model.eval.Calibration;
import ai.lathe.model.eval.JudgePrompt;
import ai.lathe.model.gen.Sampling;
import java.io.Serializable;
import java.util.List;

/** The eval job's keys (ConfigReference.EVAL), read once on the driver and shipped to the tasks. */
public record EvalSettings(String model, String quant, String candidateAdapter, String baselineKind,
    String baselineAdapter, String data, String prompts, String split, List<String> langs, int maxItems, long seed,
    String template, int maxNewTokens, double temperature, int topK, double topP, String judgeModel,
    String judgeAdapter, String judgeTemplate, String judgePromptFile, String verdictPrefix, List<String> labels,
    int lossSeqLen, String lossGeneral, int lossMaxRows, double minWinRate, int partitions, String output,
    Calibration calibration)
    implements Serializable {

  public EvalSettings {
    if (!List.of("reference", "base", "adapter").contains(baselineKind)) {
      throw new IllegalArgumentException("baseline.kind must be reference, base or adapter, got '" + baselineKind + "'");
    }
    if (baselineKind.equals("adapter") == (baselineAdapter == null)) {
      throw new IllegalArgumentException("baseline.adapter is needed exactly when baseline.kind is adapter");
    }
    if ((data == null) == (prompts == null)) {
      throw new IllegalArgumentException("give exactly one of data (prepared SFT data) and prompts (a prompts file)");
    }
    if (labels.size() != 2) {
      throw new IllegalArgumentException("judge.labels must list two labels, got " + labels);
    }
    if (maxItems < 0 || lossMaxRows < 0 || partitions < 0) {
      throw new IllegalArgumentException("max_items, loss.max_rows and partitions must be >= 0");
    }
    if (calibration == null) {
      throw new IllegalArgumentException("judge.calibration is needed");
    }
    langs = List.copyOf(langs);
    labels = List.copyOf(labels);
    new Sampling(maxNewTokens, temperature, topK, topP, null, null); // checks the generation keys now
  }

  public static EvalSettings from(Config c) {
    return new EvalSettings(ExecutorModels.forExecutors(c.need("model")), ExecutorModels.quantOf(c),
        path(c, "candidate.adapter"), c.str("baseline.kind", "reference"), path(c, "baseline.adapter"),
        path(c, "data"), path(c, "prompts"), c.str("split", "validation"), c.strings("data_langs", List.of()),
        c.integer("max_items", 64), c.integer("seed", 0), c.str("template", null),
        c.integer("generation.max_new_tokens", 64), c.number("generation.temperature", 0.0),
        c.integer("generation.top_k", 0), c.number("generation.top_p", 1.0),
        ExecutorModels.forExecutors(c.need("judge.model")), path(c, "judge.adapter"), c.str("judge.template", null),
        path(c, "judge.prompt_file"), c.str("judge.verdict_prefix", JudgePrompt.DEFAULT.verdictPrefix()),
        c.strings("judge.labels", List.of("A", "B")), c.integer("loss.seq_len", 512), path(c, "loss.general"),
        c.integer("loss.max_rows", 64), c.number("gate.min_win_rate", 0.0), c.integer("partitions", 0),
        c.need("output"), Calibration.of(c.str("judge.calibration", "none"), c.number("judge.margin", 0.0)));
  }

  private static String path(Config c, String key) {
    String v = c.str(key, null);
    return v == null || v.isBlank() ? null : ExecutorModels.forExecutors(v);
  }

  /** The candidate's (or baseline's) sampling; stop ids are the tokenizer's and the model's eos. */
  Sampling sampling(int[] stopIds) {
    return new Sampling(maxNewTokens, temperature, topK, topP, stopIds, List.of());
  }

  /** The judge prompt: the shipped one, or the template read from judge.prompt_file (on the driver). */
  JudgePrompt judgePrompt(String templateText) {
    return new JudgePrompt(templateText == null ? JudgePrompt.DEFAULT_TEMPLATE : templateText, verdictPrefix,
        labels.get(0), labels.get(1));
  }
}
