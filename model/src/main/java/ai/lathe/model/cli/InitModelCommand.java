package ai.lathe.model.cli;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.io.LocalStore;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.text.HfTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/** {@code lathe init-model}: a seeded, random-initialised Llama in Hugging Face format. */
public final class InitModelCommand {
  public static final String USAGE = """
      usage: lathe init-model --output DIR [--tokenizer tokenizer.json|DIR] [--dim 256] [--layers 4]
                              [--heads 8] [--kv-heads 4] [--ffn 688] [--vocab N] [--rope-theta 10000]
                              [--max-pos 2048] [--tie] [--dtype F32|BF16] [--seed 0]
        Writes config.json, model.safetensors and the tokenizer files (vocab defaults to the
        tokenizer's size).""";

  private InitModelCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("init-model", argv, Set.of("tie", "overwrite")).allow(Set.of("output", "tokenizer", "dim", "layers",
        "heads", "kv-heads", "ffn", "vocab", "rope-theta", "max-pos", "dtype", "seed"));
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
    LlamaConfig c = new LlamaConfig("llama", vocab, a.integer("dim", 256), a.integer("layers", 4), heads,
        a.integer("kv-heads", Math.max(1, heads / 2)), a.integer("ffn", 688), 1e-5,
        a.number("rope-theta", 10000.0), a.flag("tie"), a.integer("max-pos", 2048), 1, 2);
    String dtype = a.str("dtype", "F32");
    try (var lease = OutputGuard.acquire(LocalStore.INSTANCE, spec)) {
      RandomLlama.write(out, c, a.integer("seed", 0), dtype, tokDir);
    }
    System.out.printf("wrote %s: %,d parameters (%s), vocab %d, dim %d, %d layers%n", out, c.parameterCount(),
        dtype, vocab, c.hiddenSize(), c.numLayers());
    return 0;
  }
}
