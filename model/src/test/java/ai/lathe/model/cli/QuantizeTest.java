package ai.lathe.model.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.Batch;
import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaModel;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.io.BnbNf4;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.Safetensors;
import ai.lathe.model.nn.Nf4Linear;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** lathe quantize: bitsandbytes' NF4 layout on disk, loaded back 4-bit; corrupt states refused. */
class QuantizeTest {
  static final LlamaConfig C = new LlamaConfig("llama", 300, 64, 2, 4, 2, 100, 1e-5, 10000, false, 64, 1, 2);

  @Test
  void writesBitsandbytesLayoutAndLoadsIt4Bit(@TempDir Path tmp) throws Exception {
    RandomLlama.write(tmp.resolve("m"), C, 3, "F32", null);
    assertEquals(0, Main.dispatch(new String[] {"quantize", "--model", tmp.resolve("m").toString(), "--output",
        tmp.resolve("q").toString(), "--double-quant"}, Main.COMMANDS));
    var cfg = new ObjectMapper().readTree(tmp.resolve("q/config.json").toFile());
    assertEquals("nf4", cfg.get("quantization_config").get("bnb_4bit_quant_type").asText());
    String key = "model.layers.1.mlp.down_proj.weight";
    try (Safetensors st = Safetensors.open(tmp.resolve("q/model.safetensors"))) {
      assertEquals("U8", st.entry(key).dtype());
      assertArrayEquals(new long[] {64 * 100 / 2, 1}, st.entry(key).shape());
      assertEquals("U8", st.entry(key + ".absmax").dtype());
      for (String sfx : List.of(".quant_map", ".nested_absmax", ".nested_quant_map", BnbNf4.STATE)) {
        assertTrue(st.has(key + sfx), sfx);
      }
      var state = new ObjectMapper().readTree(new String(st.readBytes(key + BnbNf4.STATE), StandardCharsets.UTF_8));
      assertEquals(List.of(64, 100), List.of(state.get("shape").get(0).asInt(), state.get("shape").get(1).asInt()));
      assertEquals(64, state.get("blocksize").asInt());
    }
    LlamaWeights q = HfCheckpoint.load(tmp.resolve("q"), DataType.FLOAT);
    assertTrue(q.layers[1].down() instanceof Nf4Linear);
    LlamaWeights inMemory = HfCheckpoint.load(tmp.resolve("m"), DataType.FLOAT).quantizeNf4(true);
    assertEquals(inMemory.projectionBytes(), q.projectionBytes());
    Batch b = Batch.of(List.of(new int[] {1, 7, 99, 4, 250, 3}), new int[] {2}, 8, 0);
    assertEquals(new LlamaModel(inMemory, null, DataType.FLOAT).sequenceLogProbs(b)[0],
        new LlamaModel(q, null, DataType.FLOAT).sequenceLogProbs(b)[0], 0.0);
  }

  @Test
  void bf16ModelStaysBf16AndEqualsQuantisingOnLoad(@TempDir Path tmp) throws Exception {
    RandomLlama.write(tmp.resolve("m"), C, 6, "BF16", null);
    assertEquals(0, Main.dispatch(new String[] {"quantize", "--model", tmp.resolve("m").toString(), "--output",
        tmp.resolve("q").toString()}, Main.COMMANDS));
    try (Safetensors st = Safetensors.open(tmp.resolve("q/model.safetensors"))) {
      assertEquals("BF16", st.entry("model.embed_tokens.weight").dtype());
      assertEquals("BF16", st.entry("lm_head.weight").dtype());
      assertEquals("U8", st.entry("model.layers.0.mlp.up_proj.weight").dtype());
    }
    assertEquals("bfloat16", new ObjectMapper().readTree(tmp.resolve("q/config.json").toFile()).get("torch_dtype")
        .asText());
    LlamaWeights pre = HfCheckpoint.load(tmp.resolve("q"), DataType.FLOAT);
    LlamaWeights onLoad = HfCheckpoint.load(tmp.resolve("m"), DataType.FLOAT, "nf4", false);
    assertTrue(pre.embed instanceof ai.lathe.model.nn.Buf.Half, "embeddings stay 16-bit in memory");
    for (int l = 0; l < C.numLayers(); l++) {
      for (String m : LlamaWeights.MODULES) {
        assertArrayEquals(((Nf4Linear) onLoad.layers[l].module(m)).state().packed(),
            ((Nf4Linear) pre.layers[l].module(m)).state().packed(), l + " " + m);
        assertArrayEquals(((Nf4Linear) onLoad.layers[l].module(m)).state().absmax(),
            ((Nf4Linear) pre.layers[l].module(m)).state().absmax(), l + " " + m);
      }
    }
    Batch b = Batch.of(List.of(new int[] {1, 7, 99, 4, 250, 3}), new int[] {2}, 8, 0);
    assertEquals(new LlamaModel(onLoad, null, DataType.FLOAT).sequenceLogProbs(b)[0],
        new LlamaModel(pre, null, DataType.FLOAT).sequenceLogProbs(b)[0], 0.0);
  }

  /** Rewrites one tensor of the quantised checkpoint and returns the error loading it. */
  static String corrupt(Path tmp, String name, String tensor, Safetensors.Raw value) throws Exception {
    Map<String, Safetensors.Raw> t;
    try (HfCheckpoint ck = HfCheckpoint.open(tmp.resolve("m"))) {
      t = new LinkedHashMap<>(QuantizeCommand.tensors(ck, true, new long[2]));
    }
    t.put(tensor, value);
    Path dir = tmp.resolve(name);
    Files.createDirectories(dir);
    Files.copy(tmp.resolve("m/config.json"), dir.resolve("config.json"));
    Safetensors.writeRaw(dir.resolve("model.safetensors"), t, null);
    return assertThrows(java.io.IOException.class, () -> HfCheckpoint.load(dir, DataType.FLOAT)).getMessage();
  }

  @Test
  void corruptQuantisationStatesAreRefused(@TempDir Path tmp) throws Exception {
    RandomLlama.write(tmp.resolve("m"), C, 4, "F32", null);
    String key = "model.layers.0.self_attn.q_proj.weight";
    String e1 = corrupt(tmp, "a", key + BnbNf4.STATE, Safetensors.Raw.u8(new long[] {3}, "{x:".getBytes()));
    assertTrue(e1.contains(key) && e1.contains("not valid JSON"), e1);
    byte[] wrongShape = "{\"quant_type\":\"nf4\",\"blocksize\":64,\"shape\":[64,32],\"nested_blocksize\":256,\"nested_offset\":0.1}"
        .getBytes();
    String e2 = corrupt(tmp, "b", key + BnbNf4.STATE, Safetensors.Raw.u8(new long[] {wrongShape.length}, wrongShape));
    assertTrue(e2.contains("shape [64,32] is not the model's [64, 64]"), e2);
    String e3 = corrupt(tmp, "c", key + ".absmax", Safetensors.Raw.u8(new long[] {5}, new byte[5]));
    assertTrue(e3.contains(key) && e3.contains("corrupt quantisation state"), e3);
    String e4 = corrupt(tmp, "d", key + ".quant_map", Safetensors.Raw.f32(new long[] {16}, new float[16]));
    assertTrue(e4.contains("quant_map[0]") && e4.contains("not the NF4 code book"), e4);
    String e5 = corrupt(tmp, "e", key, Safetensors.Raw.u8(new long[] {10, 1}, new byte[10]));
    assertTrue(e5.contains("packed bytes") && e5.contains("corrupt quantisation state"), e5);
  }
}
