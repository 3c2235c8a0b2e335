package ai.lathe.model.cli;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.io.LocalStore;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.text.HfTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/** {@code lathe init-model}: a seeded, random-initialised model of one family in Hugging Face format. */
public final class InitModelCommand {
  public static final String USAGE = """
      usage: lathe init-model --output DIR [--tokenizer tokenizer.json|DIR] [--family llama] [--dim 256]
                              [--layers 4] [--heads 8] [--kv-heads 4] [--head-dim dim/heads] [--ffn 688]
                              [--vocab N] [--rope-theta 10000] [--max-pos 2048] [--sliding-window 4096]
                              [--tie] [--dtype F32|BF16] [--seed 0]
        Writes config.json, model.safetensors and the tokenizer files (vocab defaults to the
        tokenizer's size). --family: llama (Llama 2), llama3 (llama3 rope scaling as Llama 3.1,
        rope_theta 500000), qwen2 (q/k/v biases, rope_theta 1000000), qwen3 (q/k head norms,
        rope_theta 1000000), mistral (sliding window). Models of 100M+ parameters are written
        tensor by tensor in a few MB (uniform values, std 0.02), e.g. a Llama-3.2-1B shape:
        --family llama3 --vocab 128256 --dim 2048 --layers 16 --heads 32 --kv-heads 8 --ffn 8192 --tie --dtype BF16""";

  /** From this size on, tensors are generated and written one slice at a time (uniform, std 0.02). */
  static final long STREAMED_PARAMS = 100_000_000L;

  private InitModelCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("init-model", argv, Set.of("tie", "overwrite")).allow(Set.of("output", "tokenizer", "dim", "layers",
        "heads", "kv-heads", "ffn", "vocab", "rope-theta", "max-pos", "dtype", "seed", "family", "head-dim",
        "sliding-window"));
    Path out = a.path("output");
    java.util.List<OutputGuard.Input> in = a.has("tokenizer")
        ? java.util.List.of(OutputGuard.Input.of("tokenizer", a.path("tokenizer").toString())) : java.util.List.of();
    OutputGuard.Spec spec = new OutputGuard.Spec("init-model", out.toString(), OutputGuard.Kind.MODEL,
        a.flag("overwrite"), in);
    OutputGuard.check(LocalStore.INSTANCE, spec); // before the tokenizer is even opened
    Path tokDir = null;
    int vocab = a.integer("vocab", 0);
    if (a.has("tokenizer")) {
      Path t = a.path("tokenizer");
      Path file = Files.isDirectory(t) ? t.resolve("tokenizer.json") : t;
      try (HfTokenizer tok = HfTokenizer.open(file)) {
        if (vocab == 0) {
          vocab = tok.vocabSize();
        }
        tok.checkFits(vocab, out);
      }
      tokDir = file.getParent();
    }
    if (vocab == 0) {
      throw new Args.UsageException("init-model: give --tokenizer or --vocab");
    }
    int heads = a.integer("heads", 8);
    String family = a.str("family", "llama");
    double theta = switch (family) {
      case "llama3" -> 500000.0;
      case "qwen2", "qwen3" -> 1000000.0;
      default -> 10000.0;
    };
    if (a.has("sliding-window") && !family.equals("mistral")) {
      throw new Args.UsageException("init-model: --sliding-window is only for --family mistral");
    }
    LlamaConfig c;
    try {
      c = LlamaConfig.family(family, vocab, a.integer("dim", 256), a.integer("layers", 4), heads,
          a.integer("kv-heads", Math.max(1, heads / 2)), a.integer("ffn", 688), a.integer("head-dim", 0),
          a.number("rope-theta", theta), a.flag("tie"), a.integer("max-pos", 2048),
          family.equals("mistral") ? a.integer("sliding-window", 4096) : 0);
    } catch (IllegalArgumentException e) {
      throw new Args.UsageException("init-model: " + e.getMessage());
    }
    String dtype = a.str("dtype", "F32");
    try (var lease = OutputGuard.acquire(LocalStore.INSTANCE, spec)) {
      if (c.parameterCount() >= STREAMED_PARAMS) {
        RandomLlama.writeStreamed(out, c, a.integer("seed", 0), dtype, tokDir);
      } else {
        RandomLlama.write(out, c, a.integer("seed", 0), dtype, tokDir);
      }
    }
    System.out.printf("wrote %s: %s, %,d parameters (%s), vocab %d, dim %d, %d layers%n", out, family,
        c.parameterCount(), dtype, vocab, c.hiddenSize(), c.numLayers());
    return 0;
  }
}
