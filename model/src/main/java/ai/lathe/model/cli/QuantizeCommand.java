package ai.lathe.model.cli;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.io.AtomicDir;
import ai.lathe.model.io.LocalStore;
import ai.lathe.model.io.OutputGuard;
import ai.lathe.model.io.BnbNf4;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.Safetensors;
import ai.lathe.model.io.SafetensorsSpool;
import ai.lathe.model.nn.Nf4Linear;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code lathe quantize}: writes a pre-quantised copy of a Hugging Face Llama folder, the seven
 * projections of every layer in bitsandbytes' NF4 layout with transformers' quantization_config,
 * so every job loads it 4-bit without quantising again.
 */
public final class QuantizeCommand {
  public static final String USAGE = """
      usage: lathe quantize --model DIR --output DIR [--double-quant]
        Writes DIR with the projections in bitsandbytes' NF4 (blocks of 64, fp32 absmax; with
        --double-quant the absmax 8-bit in blocks of 256), embeddings, norms and head as stored
        (BF16 stays BF16, else F32), config.json with a bitsandbytes quantization_config and the tokenizer files.""";

  private QuantizeCommand() {}

  public static int run(String[] argv) throws Exception {
    Args a = new Args("quantize", argv, Set.of("double-quant", "overwrite"))
        .allow(Set.of("model", "output"));
    Path model = a.path("model");
    Path out = a.path("output");
    boolean dq = a.flag("double-quant");
    try (var lease = OutputGuard.acquire(LocalStore.INSTANCE, new OutputGuard.Spec("quantize", out.toString(),
        OutputGuard.Kind.QUANTIZED_MODEL, a.flag("overwrite"), List.of(OutputGuard.Input.of("model", model.toString()))))) {
      write(model, out, dq);
    }
    return 0;
  }

  private static void write(Path model, Path out, boolean dq) throws java.io.IOException {
    long[] bytes = new long[2];
    try (HfCheckpoint ck = HfCheckpoint.open(model)) {
      LlamaConfig c = ck.config();
      String dtype = ck.entry(ai.lathe.model.io.HfLayout.EMBED).dtype().equals("BF16") ? "BF16" : "F32";
      ObjectNode cfg = c.toJson();
      cfg.put("torch_dtype", dtype.equals("BF16") ? "bfloat16" : "float32");
      ObjectNode q = cfg.putObject("quantization_config");
      q.put("quant_method", "bitsandbytes").put("load_in_4bit", true).put("load_in_8bit", false)
          .put("bnb_4bit_quant_type", "nf4").put("bnb_4bit_use_double_quant", dq)
          .put("bnb_4bit_compute_dtype", "float32").put("bnb_4bit_quant_storage", "uint8");
      q.putArray("llm_int8_skip_modules").add("lm_head");
      AtomicDir.write(out, tmp -> {
        try (SafetensorsSpool sp = new SafetensorsSpool(tmp.resolve("model.safetensors"))) {
          write(ck, dq, bytes, sp);
          sp.finish(Map.of("format", "pt"));
        }
        // Lathe's marker: a rerun may replace this folder (never a model it did not write)
        Files.writeString(tmp.resolve("lathe-quantize.json"), new ObjectMapper().createObjectNode()
            .put("model", model.toString()).put("double_quant", dq).put("code_version", ai.lathe.model.Version.get())
            .toString());
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(tmp.resolve("config.json").toFile(),
            cfg);
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
          if (Files.exists(model.resolve(f))) {
            Files.copy(model.resolve(f), tmp.resolve(f));
          }
        }
      });
    }
    System.out.printf("quantize: %s -> %s, projections %.1f MiB -> %.1f MiB (NF4%s, %.3f bytes/param)%n", model, out,
        bytes[0] / 1048576.0, bytes[1] / 1048576.0, dq ? " + double quant" : "", 4.0 * bytes[1] / bytes[0]);
  }

  /**
   * Every tensor of the quantised checkpoint, in checkpoint order, one at a time into sp: the seven
   * projections quantised as they are read (HfCheckpoint.quantizeStreamed), everything else
   * (embeddings, norms, biases, head) streamed in slices, BF16 kept BF16, anything else as F32;
   * bytes: fp32 vs NF4 projection bytes. Memory: one projection's codes and one slice.
   */
  static void write(HfCheckpoint ck, boolean dq, long[] bytes, SafetensorsSpool sp) throws java.io.IOException {
    LlamaConfig c = ck.config();
    Set<String> projections = projections(c);
    for (var e : HfCheckpoint.shapes(c).entrySet()) {
      String key = e.getKey();
      long[] s = e.getValue();
      Safetensors.Entry stored = ck.entry(key);
      if (!java.util.Arrays.equals(stored.shape(), s)) {
        throw new java.io.IOException(ck.dir() + ": tensor '" + key + "' has shape "
            + java.util.Arrays.toString(stored.shape()) + ", expected " + java.util.Arrays.toString(s));
      }
      if (!projections.contains(key)) {
        sp.put(key, stored.dtype().equals("BF16") ? "BF16" : "F32", s,
            (start, dst, count) -> ck.readSlice(key, start, dst, count));
        continue;
      }
      Nf4Linear q = ck.quantizeStreamed(key, (int) s[0], (int) s[1], dq, DataType.FLOAT);
      for (var t : BnbNf4.tensors(key, q).entrySet()) {
        sp.put(t.getKey(), t.getValue());
      }
      bytes[0] += 4L * s[0] * s[1];
      bytes[1] += q.bytes();
    }
  }

  /** The same tensors in memory, all floats as F32 (tests rewrite one and load the result). */
  static Map<String, Safetensors.Raw> tensors(HfCheckpoint ck, boolean dq, long[] bytes) throws java.io.IOException {
    LlamaConfig c = ck.config();
    Set<String> projections = projections(c);
    Map<String, Safetensors.Raw> t = new LinkedHashMap<>();
    for (var e : HfCheckpoint.shapes(c).entrySet()) {
      String key = e.getKey();
      long[] s = e.getValue();
      if (projections.contains(key)) {
        Nf4Linear q = ck.quantizeStreamed(key, (int) s[0], (int) s[1], dq, DataType.FLOAT);
        t.putAll(BnbNf4.tensors(key, q));
        bytes[0] += 4L * s[0] * s[1];
        bytes[1] += q.bytes();
      } else {
        t.put(key, Safetensors.Raw.f32(s, ck.read(key, s)));
      }
    }
    return t;
  }

  /** Checkpoint keys of the seven projections of every layer. */
  static Set<String> projections(LlamaConfig c) {
    Set<String> p = new java.util.HashSet<>();
    for (int l = 0; l < c.numLayers(); l++) {
      for (String m : LlamaWeights.MODULES) {
        p.add(LlamaWeights.moduleKey(l, m));
      }
    }
    return p;
  }
}
