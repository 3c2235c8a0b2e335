package ai.lathe.model.io;

import ai.lathe.model.LlamaWeights;
import ai.lathe.model.TrainableWeights;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The output of full-parameter training: a Hugging Face model folder (config.json, sharded
 * safetensors streamed one tensor at a time, the base's tokenizer files) plus lathe-run.json and
 * any extra text files, committed atomically. Every Lathe command loads it as a base model.
 */
public final class TrainedModel {
  /** Default shard size, as transformers' save_pretrained (5 GB). */
  public static final long MAX_SHARD_BYTES = 5L << 30;

  static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
      "special_tokens_map.json", "tokenizer.model", "generation_config.json", "chat_template.jinja");

  private TrainedModel() {}

  /** Writes w to out in dtype F32 or BF16; tokenizer files are copied from tokenizerDir when present there. */
  public static void write(Path out, LlamaWeights w, String dtype, long maxShardBytes, Path tokenizerDir,
      JsonNode runInfo, Map<String, String> extraFiles) throws IOException {
    ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    var tensors = TrainableWeights.named(w);
    AtomicDir.write(out, tmp -> {
      ObjectNode cfg = w.config.toJson();
      cfg.put("torch_dtype", dtype.equals("BF16") ? "bfloat16" : "float32");
      om.writeValue(tmp.resolve("config.json").toFile(), cfg);
      try (var sw = new StreamingCheckpointWriter(tmp, HfCheckpoint.shapes(w.config), dtype, maxShardBytes)) {
        for (var e : tensors.entrySet()) {
          float[] data = e.getValue().castTo(DataType.FLOAT).dup('c').data().asFloat();
          for (int i = 0; i < data.length; i++) {
            if (!Float.isFinite(data[i])) {
              throw new IOException(out + ": refusing to write non-finite " + e.getKey() + "[" + i + "]");
            }
          }
          sw.put(e.getKey(), data);
        }
      }
      if (tokenizerDir != null) {
        for (String f : TOKENIZER_FILES) {
          Path src = tokenizerDir.resolve(f);
          if (Files.exists(src)) {
            Files.copy(src, tmp.resolve(f));
          }
        }
      }
      if (runInfo != null) {
        om.writeValue(tmp.resolve(PeftAdapter.RUN_INFO).toFile(), runInfo);
      }
      for (var e : extraFiles.entrySet()) {
        Files.writeString(tmp.resolve(e.getKey()), e.getValue());
      }
    });
  }
}
