package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

class CheckpointIoTest {
  static final LlamaConfig C = new LlamaConfig("llama", 40, 16, 2, 4, 2, 24, 1e-5, 10000, false, 64, 1, 2);

  @Test
  void bf16AndF16ConversionsMatchKnownValues() {
    assertEquals(1.0f, Safetensors.bf16ToFloat((short) 0x3f80));
    assertEquals(-2.0f, Safetensors.bf16ToFloat((short) 0xc000));
    assertEquals((short) 0x3f80, Safetensors.floatToBf16(1.0f));
    // 1 + 2^-8 is exactly half-way between two bf16 values: ties to even (down to 1.0)
    assertEquals((short) 0x3f80, Safetensors.floatToBf16(1.00390625f));
    assertEquals((short) 0x3f82, Safetensors.floatToBf16(1.01171875f)); // half-way above odd: up
    assertEquals(1.0f, Safetensors.f16ToFloat((short) 0x3c00));
    assertEquals(-0.5f, Safetensors.f16ToFloat((short) 0xb800));
    assertEquals(65504f, Safetensors.f16ToFloat((short) 0x7bff));
    assertEquals(5.960464477539063e-8f, Safetensors.f16ToFloat((short) 0x0001)); // smallest subnormal
    assertTrue(Float.isInfinite(Safetensors.f16ToFloat((short) 0x7c00)));
  }

  @Test
  void singleAndShardedCheckpointsRoundTrip(@TempDir Path tmp) throws IOException {
    LlamaWeights w = RandomLlama.create(C, 3, 0.5, 0.1, DataType.FLOAT);
    Map<String, Safetensors.Tensor> t = HfCheckpoint.tensors(w);
    HfCheckpoint.write(tmp.resolve("one"), C, t, "F32", 1L << 30, null);
    HfCheckpoint.write(tmp.resolve("sharded"), C, t, "F32", 4000, null);
    assertTrue(Files.exists(tmp.resolve("sharded/" + HfCheckpoint.INDEX)));
    assertTrue(Files.list(tmp.resolve("sharded")).filter(p -> p.toString().endsWith(".safetensors")).count() > 2);
    for (String d : new String[] {"one", "sharded"}) {
      LlamaWeights r = HfCheckpoint.load(tmp.resolve(d), DataType.FLOAT);
      Map<String, Safetensors.Tensor> back = HfCheckpoint.tensors(r);
      assertEquals(t.keySet(), back.keySet());
      for (String k : t.keySet()) {
        assertArrayEquals(t.get(k).data(), back.get(k).data(), 0f, k);
      }
    }
    HfCheckpoint.write(tmp.resolve("bf16"), C, t, "BF16", 1L << 30, null);
    LlamaWeights b = HfCheckpoint.load(tmp.resolve("bf16"), DataType.FLOAT);
    float[] orig = t.get("lm_head.weight").data();
    float[] got = HfCheckpoint.tensors(b).get("lm_head.weight").data();
    for (int i = 0; i < orig.length; i++) {
      assertEquals(orig[i], got[i], Math.abs(orig[i]) / 256 + 1e-30, "bf16 keeps 8 bits of mantissa");
    }
  }

  @Test
  void truncatedFileNamesFileAndTensor(@TempDir Path tmp) throws IOException {
    LlamaWeights w = RandomLlama.create(C, 3, 0.5, 0.1, DataType.FLOAT);
    HfCheckpoint.write(tmp.resolve("m"), C, HfCheckpoint.tensors(w), "F32", 1L << 30, null);
    Path f = tmp.resolve("m/model.safetensors");
    byte[] all = Files.readAllBytes(f);
    Files.write(f, java.util.Arrays.copyOf(all, all.length - 100));
    IOException e = assertThrows(IOException.class, () -> HfCheckpoint.load(tmp.resolve("m"), DataType.FLOAT));
    assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("truncated")
        && e.getMessage().contains("lm_head.weight"), e.getMessage());
    Files.write(f, java.util.Arrays.copyOf(all, 5));
    e = assertThrows(IOException.class, () -> HfCheckpoint.load(tmp.resolve("m"), DataType.FLOAT));
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    Files.delete(f);
    e = assertThrows(IOException.class, () -> HfCheckpoint.load(tmp.resolve("m"), DataType.FLOAT));
    assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("not found"), e.getMessage());
  }

  @Test
  void wrongShapeNamesTheTensor(@TempDir Path tmp) throws IOException {
    LlamaWeights w = RandomLlama.create(C, 3, 0.5, 0.1, DataType.FLOAT);
    Map<String, Safetensors.Tensor> t = new LinkedHashMap<>(HfCheckpoint.tensors(w));
    t.put("model.layers.1.self_attn.k_proj.weight", new Safetensors.Tensor(new long[] {16, 16}, new float[256]));
    HfCheckpoint.write(tmp.resolve("m"), C, t, "F32", 1L << 30, null);
    IOException e = assertThrows(IOException.class, () -> HfCheckpoint.load(tmp.resolve("m"), DataType.FLOAT));
    assertTrue(e.getMessage().contains("model.layers.1.self_attn.k_proj.weight")
        && e.getMessage().contains("[16, 16]") && e.getMessage().contains("[8, 16]"), e.getMessage());
  }

  @Test
  void unsupportedArchitectureIsRejected(@TempDir Path tmp) throws IOException {
    Files.writeString(tmp.resolve("config.json"), "{\"model_type\": \"gpt2\", \"vocab_size\": 10}");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> LlamaConfig.read(tmp.resolve("config.json")));
    assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("gpt2"), e.getMessage());
  }

  @Test
  void scoreFailsCleanlyWithoutWritingOnBadInput(@TempDir Path tmp) throws IOException {
    LlamaWeights w = RandomLlama.create(C, 3, 0.5, 0.1, DataType.FLOAT);
    HfCheckpoint.write(tmp.resolve("m"), C, HfCheckpoint.tensors(w), "F32", 1L << 30, null);
    Path rows = tmp.resolve("rows.jsonl");
    Files.writeString(rows, "{\"input_ids\": [1, 5, 7], \"completion_start\": 1}\n{\"input_ids\": [1, 500], "
        + "\"completion_start\": 1}\n");
    Path out = tmp.resolve("out.jsonl");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = score(tmp.resolve("m"), rows, out, err);
    assertEquals(1, code);
    assertTrue(err.toString().contains("rows.jsonl:2") && err.toString().contains("input_ids"), err.toString());
    assertFalse(Files.exists(out));
  }

  @Test
  void scoreOnATruncatedModelExitsNonZeroNamingFileAndTensor(@TempDir Path tmp) throws IOException {
    LlamaWeights w = RandomLlama.create(C, 3, 0.5, 0.1, DataType.FLOAT);
    HfCheckpoint.write(tmp.resolve("m"), C, HfCheckpoint.tensors(w), "F32", 1L << 30, null);
    Path f = tmp.resolve("m/model.safetensors");
    byte[] all = Files.readAllBytes(f);
    Files.write(f, java.util.Arrays.copyOf(all, all.length - 4));
    Path rows = tmp.resolve("rows.jsonl");
    Files.writeString(rows, "{\"input_ids\": [1, 5, 7], \"completion_start\": 1}\n");
    Path out = tmp.resolve("out.jsonl");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = score(tmp.resolve("m"), rows, out, err);
    assertEquals(1, code);
    String msg = err.toString();
    assertTrue(msg.contains("model.safetensors") && msg.contains("lm_head.weight") && msg.lines().count() == 1, msg);
    assertFalse(Files.exists(out));
  }

  /** Runs the score command, capturing what it prints on stderr. */
  static int score(Path model, Path rows, Path out, ByteArrayOutputStream err) {
    PrintStream old = System.err;
    System.setErr(new PrintStream(err));
    try {
      return Main.dispatch(new String[] {"score", "--model", model.toString(), "--input", rows.toString(),
          "--output", out.toString()}, Main.COMMANDS);
    } finally {
      System.setErr(old);
    }
  }
}
