package ai.lathe.model.io;

import ai.lathe.model.nn.Nf4;
import ai.lathe.model.nn.Nf4Linear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * NF4 weights in the layout bitsandbytes (and transformers' pre-quantised checkpoints) use:
 * KEY (U8 packed codes [ceil(n/2), 1]), KEY.absmax (F32, or U8 codes with double quantisation),
 * KEY.quant_map (F32 [16]), KEY.nested_absmax and KEY.nested_quant_map (F32, double quantisation)
 * and KEY.quant_state.bitsandbytes__nf4 (U8: JSON with quant_type, blocksize, shape, dtype and the
 * nested block size, dtype and offset).
 */
public final class BnbNf4 {
  public static final String STATE = ".quant_state.bitsandbytes__nf4";

  private BnbNf4() {}

  public static Map<String, Safetensors.Raw> tensors(String key, Nf4Linear q) {
    Nf4Linear.State s = q.state();
    Map<String, Safetensors.Raw> out = new LinkedHashMap<>();
    out.put(key, Safetensors.Raw.u8(new long[] {s.packed().length, 1}, s.packed()));
    ObjectNode st = new ObjectMapper().createObjectNode();
    st.put("quant_type", "nf4").put("blocksize", Nf4.BLOCK).put("dtype", "float32");
    st.putArray("shape").add(s.out()).add(s.in());
    if (s.doubleQuant()) {
      out.put(key + ".absmax", Safetensors.Raw.u8(new long[] {s.nestedCodes().length}, s.nestedCodes()));
      out.put(key + ".nested_absmax", Safetensors.Raw.f32(new long[] {s.nestedAbsmax().length}, s.nestedAbsmax()));
      out.put(key + ".nested_quant_map", Safetensors.Raw.f32(new long[] {256}, s.nestedMap()));
      st.put("nested_blocksize", Nf4.NESTED_BLOCK).put("nested_dtype", "float32").put("nested_offset", s.offset());
    } else {
      out.put(key + ".absmax", Safetensors.Raw.f32(new long[] {s.absmax().length}, s.absmax()));
    }
    out.put(key + ".quant_map", Safetensors.Raw.f32(new long[] {16}, Nf4.CODE.clone()));
    out.put(key + STATE, Safetensors.Raw.u8(new long[] {st.toString().length()},
        st.toString().getBytes(StandardCharsets.UTF_8)));
    return out;
  }

  /** Where each tensor lives (the parts of one weight may sit in different shards). */
  public interface Files {
    Safetensors of(String tensor) throws IOException;
  }

  /** Reads KEY's NF4 state, checking it against the expected shape. */
  public static Nf4Linear read(Files files, String key, int out, int in, DataType dt) throws IOException {
    Safetensors f = files.of(key + STATE);
    String where = f.file() + ": " + key;
    JsonNode st;
    try {
      st = new ObjectMapper().readTree(new String(f.readBytes(key + STATE), StandardCharsets.UTF_8));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException(where + STATE + " is not valid JSON (corrupt quantisation state)");
    }
    String type = st.path("quant_type").asText("");
    if (!type.equals("nf4")) {
      throw new IOException(where + ": quant_type '" + type + "' is not supported (nf4 only)");
    }
    if (st.path("blocksize").asInt(-1) != Nf4.BLOCK) {
      throw new IOException(where + ": blocksize " + st.path("blocksize") + " is not supported (" + Nf4.BLOCK + ")");
    }
    JsonNode shape = st.path("shape");
    if (!shape.isArray() || shape.size() != 2 || shape.get(0).asInt() != out || shape.get(1).asInt() != in) {
      throw new IOException(where + ": quantisation state shape " + shape + " is not the model's [" + out + ", " + in
          + "]");
    }
    float[] map = files.of(key + ".quant_map").readFloats(key + ".quant_map", 16);
    for (int i = 0; i < 16; i++) {
      if (Math.abs(map[i] - Nf4.CODE[i]) > 1e-6) {
        throw new IOException(where + ".quant_map[" + i + "] = " + map[i] + " is not the NF4 code book's "
            + Nf4.CODE[i]);
      }
    }
    byte[] packed = files.of(key).readBytes(key);
    boolean nested = st.has("nested_offset") || st.has("nested_blocksize");
    Nf4Linear.State s;
    if (nested) {
      if (st.path("nested_blocksize").asInt(-1) != Nf4.NESTED_BLOCK || !st.path("nested_offset").isNumber()) {
        throw new IOException(where + ": nested_blocksize " + st.path("nested_blocksize") + " / nested_offset "
            + st.path("nested_offset") + " unusable (" + Nf4.NESTED_BLOCK + " and a number expected)");
      }
      s = new Nf4Linear.State(out, in, packed, null, files.of(key + ".absmax").readBytes(key + ".absmax"),
          files.of(key + ".nested_absmax").readFloats(key + ".nested_absmax"),
          Nf4.shareDynamic(files.of(key + ".nested_quant_map").readFloats(key + ".nested_quant_map")),
          (float) st.get("nested_offset").asDouble());
    } else {
      s = new Nf4Linear.State(out, in, packed, files.of(key + ".absmax").readFloats(key + ".absmax"), null, null, null,
          0f);
    }
    try {
      return new Nf4Linear(s, dt, where);
    } catch (IllegalArgumentException e) {
      throw new IOException(e.getMessage() + " (corrupt quantisation state)", e);
    }
  }
}
