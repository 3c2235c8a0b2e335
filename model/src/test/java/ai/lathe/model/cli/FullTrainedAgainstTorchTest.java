package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.TrainableWeights;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.TrainedModel;
import ai.lathe.model.train.DpoTrainer;
import ai.lathe.model.train.SftTrainer;
import ai.lathe.model.train.TrainMode;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A fully fine-tuned model written by Lathe loads in an independent implementation of
 * transformers' math. Deterministically: full DPO (3 steps, every weight) from the checkpoint the
 * PyTorch reference wrote (golden/torch-tiny), written as a Hugging Face folder; `score` on that
 * folder equals the in-memory model (1e-5) and tests/python/llama_ref.py's float64 log-probs of the
 * same model (golden expected-full-dpo.jsonl, made by `llama_ref.py score` from the folder this
 * test writes to target/full-dpo-torch/model). The golden keeps the check CI-safe (no Python
 * needed); when a python3 with torch is found (LATHE_PYTHON, /usr/bin/python3, python3), the
 * reference also runs live on the folder just written.
 */
class FullTrainedAgainstTorchTest {
  static final Path GOLD = Path.of("src/test/resources/golden/torch-tiny");
  static final Path OUT = Path.of("target/full-dpo-torch");

  /** Each row as a pair: chosen = the row, rejected = its prompt with the completion reversed. */
  static List<DpoTrainer.Pair> pairs(List<JsonNode> rows) {
    List<DpoTrainer.Pair> out = new ArrayList<>();
    for (JsonNode r : rows) {
      int[] ids = ints(r.get("input_ids"));
      int start = r.get("completion_start").asInt();
      int[] rej = ids.clone();
      for (int i = start; i < ids.length; i++) {
        rej[i] = ids[ids.length - 1 - (i - start)];
      }
      out.add(new DpoTrainer.Pair(ids, start, rej, start, 0, 0));
    }
    return out;
  }

  static int[] ints(JsonNode a) {
    int[] v = new int[a.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = a.get(i).asInt();
    }
    return v;
  }

  @Test
  void fullDpoModelScoresAsTheTorchReference() throws Exception {
    List<JsonNode> rows = ScoreAgainstTorchTest.lines(GOLD.resolve("rows.jsonl"));
    // the reference's BF16 checkpoint (held in 16 bits) as dense F32 master weights, as the jobs train it
    ai.lathe.model.io.AtomicDir.deleteTree(OUT);
    LlamaWeights bf16 = HfCheckpoint.load(GOLD.resolve("model"), DataType.FLOAT);
    assertTrue(bf16.layers[0].q() instanceof ai.lathe.model.nn.HalfLinear, "BF16 is held in 16 bits");
    LlamaWeights w = TrainableWeights.copyOf(bf16);
    var exact = TrainableWeights.named(HfCheckpoint.load(GOLD.resolve("model"), DataType.DOUBLE));
    TrainableWeights.named(w).forEach((k, v) -> assertEquals(0.0, v.castTo(DataType.DOUBLE).sub(exact.get(k))
        .amaxNumber().doubleValue(), k + ": BF16 widens to F32 exactly"));
    LlamaModel m = new LlamaModel(w, null, DataType.FLOAT);
    new TrainMode(true, List.of()).attach(m);
    SftTrainer.Options o = new SftTrainer.Options(5, 1, 128, 1e-2, 0, 3, 1.0, 0.0, 1.0, 7);
    DpoTrainer t = new DpoTrainer(m, o, "sigmoid", 0.5, 0.0);
    List<DpoTrainer.Pair> raw = pairs(rows);
    double[][] ref = t.logProbs(raw); // the reference: the starting weights, scored once
    List<DpoTrainer.Pair> train = new ArrayList<>();
    for (int i = 0; i < raw.size(); i++) {
      DpoTrainer.Pair p = raw.get(i);
      train.add(new DpoTrainer.Pair(p.chosen(), p.chosenStart(), p.rejected(), p.rejectedStart(), ref[0][i], ref[1][i]));
    }
    for (int s = 0; s < 3; s++) {
      t.step(List.of(train));
    }
    Path model = OUT.resolve("model");
    TrainedModel.write(model, m.weights(), "F32", TrainedModel.MAX_SHARD_BYTES, null, null, Map.of());

    Path scored = OUT.resolve("scored.jsonl");
    assertEquals(0, Main.dispatch(new String[] {"score", "--model", model.toString(), "--input",
        GOLD.resolve("rows.jsonl").toString(), "--output", scored.toString(), "--batch", "2"}, Main.COMMANDS));
    double[] written = ScoreAgainstTorchTest.lines(scored).stream().mapToDouble(j -> j.get("logprob").asDouble())
        .toArray();
    double[] inMemory = t.logProbs(train)[0];
    List<JsonNode> base = ScoreAgainstTorchTest.lines(GOLD.resolve("expected.jsonl"));
    List<JsonNode> golden = ScoreAgainstTorchTest.lines(GOLD.resolve("expected-full-dpo.jsonl"));
    double[] live = Python.torch() == null ? null : Python.score(Python.torch(), model, GOLD.resolve("rows.jsonl"));
    double worstGolden = 0;
    double worstLive = 0;
    for (int i = 0; i < rows.size(); i++) {
      assertEquals(inMemory[i], written[i], 1e-5, "row " + i + ": written vs in memory");
      assertTrue(Math.abs(written[i] - base.get(i).get("logprob").asDouble()) > 0.1, "row " + i + ": training moved it");
      worstGolden = Math.max(worstGolden, Math.abs(written[i] - golden.get(i).get("logprob").asDouble()));
      if (live != null) {
        worstLive = Math.max(worstLive, Math.abs(written[i] - live[i]));
      }
    }
    System.out.printf("full DPO model vs llama_ref.py: max |Lathe - torch| golden %.3g, live %s%n", worstGolden,
        live == null ? "(no python3 with torch)" : String.format("%.3g", worstLive));
    assertTrue(worstGolden < 1e-3, "golden: " + worstGolden);
    assertTrue(worstLive < 1e-3, "live: " + worstLive);
  }

  /** Finds and runs tests/python/llama_ref.py. */
  static final class Python {
    static String found;
    static boolean searched;

    /** A python3 that imports torch, or null. */
    static synchronized String torch() {
      if (!searched) {
        searched = true;
        List<String> candidates = new ArrayList<>();
        if (System.getenv("LATHE_PYTHON") != null) {
          candidates.add(System.getenv("LATHE_PYTHON"));
        }
        candidates.addAll(List.of("/usr/bin/python3", "python3"));
        for (String p : candidates) {
          try {
            Process pr = new ProcessBuilder(p, "-c", "import torch").redirectErrorStream(true).start();
            pr.getInputStream().readAllBytes();
            if (pr.waitFor() == 0) {
              found = p;
              break;
            }
          } catch (java.io.IOException | InterruptedException e) {
            // not this one
          }
        }
      }
      return found;
    }

    static double[] score(String python, Path model, Path rows) throws Exception {
      Process pr = new ProcessBuilder(python, "../tests/python/llama_ref.py", "score", model.toString(), rows.toString())
          .redirectError(ProcessBuilder.Redirect.INHERIT).start();
      String out = new String(pr.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      assertEquals(0, pr.waitFor(), "llama_ref.py score failed");
      return Arrays.stream(out.trim().split("\\s+")).mapToDouble(Double::parseDouble).toArray();
    }
  }
}
