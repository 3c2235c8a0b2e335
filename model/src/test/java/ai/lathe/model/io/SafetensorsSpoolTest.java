package ai.lathe.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The spooled writer gives the same file, byte for byte, as writing all tensors at once. */
class SafetensorsSpoolTest {
  @Test
  void sameBytesAsWriteRaw(@TempDir Path tmp) throws Exception {
    Map<String, Safetensors.Raw> t = new LinkedHashMap<>();
    float[] big = new float[(1 << 20) + 37]; // more than one slice
    for (int i = 0; i < big.length; i++) {
      big[i] = (float) Math.sin(i) * 3;
    }
    t.put("a.codes", Safetensors.Raw.u8(new long[] {5, 1}, new byte[] {1, -2, 3, 4, 127}));
    t.put("b.f32", Safetensors.Raw.f32(new long[] {3}, new float[] {1.5f, -2f, 1e-7f}));
    t.put("c.bf16", new Safetensors.Raw("BF16", new long[] {big.length}, null, big));
    Map<String, String> meta = Map.of("format", "pt");
    Safetensors.writeRaw(tmp.resolve("whole.safetensors"), t, meta);
    try (SafetensorsSpool sp = new SafetensorsSpool(tmp.resolve("spooled.safetensors"))) {
      for (var e : t.entrySet()) {
        sp.put(e.getKey(), e.getValue());
      }
      sp.finish(meta);
    }
    assertArrayEquals(Files.readAllBytes(tmp.resolve("whole.safetensors")),
        Files.readAllBytes(tmp.resolve("spooled.safetensors")));
    assertFalse(Files.exists(tmp.resolve("spooled.safetensors.spool")));
  }

  @Test
  void unfinishedLeavesNothing(@TempDir Path tmp) throws Exception {
    try (SafetensorsSpool sp = new SafetensorsSpool(tmp.resolve("x.safetensors"))) {
      sp.put("a", Safetensors.Raw.f32(new long[] {2}, new float[] {1, 2}));
    }
    assertFalse(Files.exists(tmp.resolve("x.safetensors")));
    assertFalse(Files.exists(tmp.resolve("x.safetensors.spool")));
  }
}
