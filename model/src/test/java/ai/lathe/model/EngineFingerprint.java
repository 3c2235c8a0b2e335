package ai.lathe.model;

import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.Kernels;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A hand-run check for refactors that must not change a bit: prints a SHA-256 of the NLLs and of
 * every gradient of one training forward/backward per family and mode (F32 and F64, Java and
 * ND4J kernels, LoRA with dropout, DoRA, full mode, checkpointing). Run it before and after a
 * change on the same machine and compare the lines; not a test (the hashes depend on the BLAS).
 */
public final class EngineFingerprint {
  private EngineFingerprint() {}

  public static void main(String[] args) throws Exception {
    for (Kernels k : Kernels.values()) {
      Kernels.use(k);
      for (DataType dt : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
        String tag = k + " " + dt + " ";
        System.out.println(tag + "llama lora       " + run(TinyModels.gqaUntied(), dt, "lora", false));
        System.out.println(tag + "llama lora ckpt  " + run(TinyModels.gqaUntied(), dt, "lora", true));
        System.out.println(tag + "qwen2 lora       " + run(FamilyGradientTest.qwen2(), dt, "lora", false));
        System.out.println(tag + "qwen3 dora       " + run(FamilyGradientTest.qwen3(), dt, "dora", false));
        System.out.println(tag + "qwen3 dora ckpt  " + run(FamilyGradientTest.qwen3(), dt, "dora", true));
        System.out.println(tag + "mistral full     " + run(FamilyGradientTest.mistral(3), dt, "full", false));
        System.out.println(tag + "llama3tied full  " + run(FamilyGradientTest.llama3Tied(), dt, "full", false));
        System.out.println(tag + "qwen3 full ckpt  " + run(FamilyGradientTest.qwen3(), dt, "full", true));
      }
    }
  }

  static String run(LlamaConfig c, DataType dt, String mode, boolean ckpt) throws Exception {
    LlamaWeights w = RandomLlama.create(c, 7, 0.3, 0.2, dt);
    LlamaModel m;
    List<Param> params;
    if (mode.equals("full")) {
      m = new LlamaModel(w, null, dt);
      TrainableWeights t = TrainableWeights.of(w, List.of());
      m.setTrainable(t);
      params = t.params();
    } else {
      LoraConfig lc = new LoraConfig(2, 4.0, List.of("all-linear"), 0.1, false, mode.equals("dora"), Map.of(),
          Map.of());
      AdapterSet a = AdapterSet.init(w, lc, 11, dt);
      java.util.Random rng = new java.util.Random(12);
      for (Param p : a.params()) {
        if (p.name().contains("lora_B")) {
          for (long i = 0; i < p.value().length(); i++) {
            p.value().putScalar(i, 0.3 * rng.nextGaussian());
          }
        }
      }
      m = new LlamaModel(w, a, dt);
      params = a.params();
    }
    m.setGradientCheckpointing(ckpt);
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    for (int step = 0; step < 2; step++) {
      Batch b = TinyModels.randomBatch(c, 3, 9, 5 + step);
      double[] nll = m.forward(b, true, 42 + step);
      double[] wt = new double[nll.length];
      for (int i = 0; i < wt.length; i++) {
        wt[i] = 0.5 + (i % 5) * 0.1;
        md.update(ByteBuffer.allocate(8).putLong(Double.doubleToRawLongBits(nll[i])).array());
      }
      INDArray dx = m.backward(wt);
      md.update(bytes(dx));
    }
    for (Param p : params) {
      md.update(p.name().getBytes(java.nio.charset.StandardCharsets.UTF_8));
      md.update(bytes(p.grad()));
    }
    return HexFormat.of().formatHex(md.digest()).substring(0, 24);
  }

  private static byte[] bytes(INDArray a) {
    ByteBuffer bb = ByteBuffer.allocate((int) a.length() * 8);
    for (long i = 0; i < a.length(); i++) {
      bb.putLong(Double.doubleToRawLongBits(a.getDouble(i)));
    }
    return bb.array();
  }
}
