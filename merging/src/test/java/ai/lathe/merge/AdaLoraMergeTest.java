package ai.lathe.merge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.LlamaWeights;
import ai.lathe.model.RandomLlama;
import ai.lathe.model.adapter.AdaLoraConfig;
import ai.lathe.model.adapter.AdaLoraModule;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.LoraModule;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** merge reads a PEFT AdaLoRA folder as its dense update c·B·(A∘E) over the kept ranks. */
class AdaLoraMergeTest {
  @Test
  void mergeAcceptsAnAdaLoraFolder(@TempDir Path tmp) throws Exception {
    var c = AdapterMergerTest.C;
    LlamaWeights w = RandomLlama.create(c, 1, 0.3, 0.1, DataType.FLOAT);
    HfCheckpoint.write(tmp.resolve("base"), c, HfCheckpoint.tensors(w), "F32", 1L << 30, null);
    LoraConfig lc = new LoraConfig(8, 6, List.of("q_proj", "v_proj"), 0, false, false, Map.of(), Map.of(), null,
        new AdaLoraConfig(4, 2, 0, 0, 1, 0.85, 0.85, 0.5, 10));
    AdapterSet ada = AdapterSet.init(c, lc, 3, DataType.FLOAT);
    Random r = new Random(3);
    for (Param p : ada.params()) {
      for (long i = 0; i < p.value().length(); i++) {
        p.value().putScalar(i, 0.3 * r.nextGaussian());
      }
    }
    int i = 0;
    for (AdaLoraModule m : ada.adaLoraModules()) {
      m.mask(new boolean[] {i % 2 == 0, true, false, i % 3 == 0});
      i++;
    }
    PeftAdapter.write(tmp.resolve("en"), ada, "base", null);
    PeftAdapter.write(tmp.resolve("de"), AdapterMergerTest.adapter(new LoraConfig(2, 6, List.of("q_proj", "down_proj"),
        0, true, false, Map.of(), Map.of()), 2), "base", null);
    AdapterMerger.run(MergeConfig.from(AdapterMergerTest.cfg(tmp, "linear", "adapter", 16)), tmp.resolve("base"));
    AdapterSet de = PeftAdapter.read(tmp.resolve("de"), c, DataType.FLOAT);
    AdapterSet merged = PeftAdapter.read(tmp.resolve("out-adapter"), c, DataType.FLOAT);
    for (int l = 0; l < 2; l++) {
      for (String m : List.of("q_proj", "v_proj")) {
        INDArray expect = ((AdaLoraModule) ada.module(l, m)).deltaWeight().castTo(DataType.FLOAT);
        INDArray d = AdapterMergerTest.dense(de, l, m);
        if (d != null) {
          expect.addi(d.mul(0.5));
        }
        expect.divi(1.5);
        INDArray got = AdapterMergerTest.dense(merged, l, m);
        double err = got.sub(expect).amaxNumber().doubleValue();
        assertTrue(err < 1e-5, "layer " + l + " " + m + ": " + err);
        assertTrue(expect.amaxNumber().doubleValue() > 1e-2);
      }
    }
    assertTrue(merged.module(0, "q_proj") instanceof LoraModule);
    assertEquals(3, ada.adaLoraModules().get(0).keptCount()); // {true, true, false, true}
  }
}
