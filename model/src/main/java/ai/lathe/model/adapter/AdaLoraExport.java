package ai.lathe.model.adapter;

import ai.lathe.model.io.Safetensors;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * AdaLoRA adapters as files. PEFT's saved form (get_peft_model_state_dict with
 * resize_state_dict_by_rank_pattern): keys {@code base_model.model.<module>.lora_A} [k, in],
 * {@code .lora_E} [k, 1], {@code .lora_B} [out, k] (parameters, so no ".weight"), sliced to the k
 * kept ranks of rank_pattern {@code {"<module>.lora_E": [kept?] × init_r}}; ranknum is not saved
 * (PEFT restores it as init_r). And the equivalent plain LoRA: B' = B[:, kept],
 * A' = c·(A∘E)[kept] with c = lora_alpha / (init_r + 1e-5) folded in and lora_alpha = r per
 * module (scaling exactly 1); a module that kept no rank gets rank 1 of zeros (PEFT's LoRA has no
 * rank 0).
 */
public final class AdaLoraExport {
  private AdaLoraExport() {}

  /** PEFT's rank_pattern key of a module. */
  public static String patternKey(String path) {
    return path + ".lora_E";
  }

  /** Sets rank_pattern from the modules' masks (null before the first allocation, as PEFT). */
  static void putRankPattern(ObjectNode o, List<AdaLoraModule> modules) {
    if (modules.stream().noneMatch(AdaLoraModule::decided)) {
      o.putNull("rank_pattern");
      return;
    }
    ObjectNode rp = o.putObject("rank_pattern");
    for (AdaLoraModule m : modules) {
      ArrayNode a = rp.putArray(patternKey(m.path()));
      for (boolean k : m.kept) {
        a.add(k);
      }
    }
  }

  /** PEFT's saved tensors: A, E, B of every module sliced to its kept ranks (all while undecided). */
  static Map<String, Safetensors.Tensor> peftTensors(List<AdaLoraModule> modules) {
    Map<String, Safetensors.Tensor> out = new LinkedHashMap<>();
    for (AdaLoraModule m : modules) {
      boolean[] keep = m.kept;
      int r = m.rank();
      int in = (int) m.a.size(1);
      int outDim = (int) m.b.size(0);
      float[] a = m.a.castTo(DataType.FLOAT).dup('c').data().asFloat();
      float[] e = m.e.castTo(DataType.FLOAT).dup('c').data().asFloat();
      float[] b = m.b.castTo(DataType.FLOAT).dup('c').data().asFloat();
      int k = m.keptCount();
      float[] as = new float[k * in];
      float[] es = new float[k];
      float[] bs = new float[outDim * k];
      int t = 0;
      for (int i = 0; i < r; i++) {
        if (!keep[i]) {
          continue;
        }
        System.arraycopy(a, i * in, as, t * in, in);
        es[t] = e[i];
        for (int o = 0; o < outDim; o++) {
          bs[o * k + t] = b[o * r + i];
        }
        t++;
      }
      String p = "base_model.model." + m.path();
      out.put(p + ".lora_A", new Safetensors.Tensor(new long[] {k, in}, as));
      out.put(p + ".lora_E", new Safetensors.Tensor(new long[] {k, 1}, es));
      out.put(p + ".lora_B", new Safetensors.Tensor(new long[] {outDim, k}, bs));
    }
    return out;
  }

  /** The plain-LoRA rank of a module that kept k ranks. */
  public static int loraRank(int k) {
    return Math.max(1, k);
  }

  /**
   * The plain LoRA equal to a saved AdaLoRA module (A [k, in], E [k], B [out, k]):
   * lora_A.weight = c·(A∘E) [k', in], lora_B.weight = B [out, k'], k' = max(1, k), zero-padded.
   */
  public static Map<String, Safetensors.Tensor> loraTensors(String path, float[] a, float[] e, float[] b, int k,
      int in, int out, double c) {
    int kr = loraRank(k);
    float[] la = new float[kr * in];
    float[] lb = new float[out * kr];
    for (int i = 0; i < k; i++) {
      double s = c * e[i];
      for (int j = 0; j < in; j++) {
        la[i * in + j] = (float) (s * a[i * in + j]);
      }
      for (int o = 0; o < out; o++) {
        lb[o * kr + i] = b[o * k + i];
      }
    }
    String p = "base_model.model." + path;
    Map<String, Safetensors.Tensor> t = new LinkedHashMap<>();
    t.put(p + ".lora_A.weight", new Safetensors.Tensor(new long[] {kr, in}, la));
    t.put(p + ".lora_B.weight", new Safetensors.Tensor(new long[] {out, kr}, lb));
    return t;
  }

  /**
   * The plain-LoRA config equal to an AdaLoRA one whose modules kept these rank counts (module path
   * → k; absent: init_r): r = lora_alpha = init_r, and rank_pattern = alpha_pattern = k' for the
   * modules with another rank, so every module's scaling alpha/r is exactly 1.
   */
  public static LoraConfig loraConfig(LoraConfig ada, Map<String, Integer> keptByPath) {
    int initR = ada.adalora().initR();
    Map<String, Integer> rp = new LinkedHashMap<>();
    Map<String, Double> ap = new LinkedHashMap<>();
    keptByPath.forEach((path, k) -> {
      if (loraRank(k) != initR) {
        rp.put(path, loraRank(k));
        ap.put(path, (double) loraRank(k));
      }
    });
    return new LoraConfig(initR, initR, ada.targetModules(), ada.loraDropout(), false, false, rp, ap,
        ada.layersToTransform(), null);
  }

  /** The equivalent plain LoRA of trained modules: its config and PEFT tensors. */
  public record Lora(LoraConfig config, Map<String, Safetensors.Tensor> tensors) {}

  public static Lora toLora(AdapterSet set) {
    Map<String, Safetensors.Tensor> saved = peftTensors(set.adaLoraModules());
    Map<String, Safetensors.Tensor> out = new LinkedHashMap<>();
    Map<String, Integer> kept = new LinkedHashMap<>();
    for (AdaLoraModule m : set.adaLoraModules()) {
      String p = "base_model.model." + m.path();
      int k = m.keptCount();
      kept.put(m.path(), k);
      out.putAll(loraTensors(m.path(), saved.get(p + ".lora_A").data(), saved.get(p + ".lora_E").data(),
          saved.get(p + ".lora_B").data(), k, (int) m.a.size(1), (int) m.b.size(0), m.scale()));
    }
    return new Lora(loraConfig(set.config(), kept), out);
  }
}
