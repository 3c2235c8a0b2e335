package ai.lathe.model.adapter;

import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdaLoRA's training state beyond its parameters, as named float arrays that travel and average
 * like the weights (distributed rounds) and go into checkpoints: per module the EMAs of
 * sensitivity and uncertainty for A, E and B, and the kept-rank mask (r entries 1/0, then 1 when
 * the ranks have been decided).
 */
public final class AdaLoraState {
  private static final String[] PARTS = {"lora_A", "lora_E", "lora_B"};

  private AdaLoraState() {}

  public static List<String> names(AdapterSet set) {
    List<String> out = new ArrayList<>();
    for (AdaLoraModule m : set.adaLoraModules()) {
      String p = "base_model.model." + m.path() + ".adalora.";
      for (String part : PARTS) {
        out.add(p + "exp_avg_ipt." + part);
      }
      for (String part : PARTS) {
        out.add(p + "exp_avg_unc." + part);
      }
      out.add(p + "kept");
    }
    return out;
  }

  public static List<float[]> values(AdapterSet set) {
    List<float[]> out = new ArrayList<>();
    for (AdaLoraModule m : set.adaLoraModules()) {
      for (INDArray x : m.expAvgIpt) {
        out.add(x.toFloatVector());
      }
      for (INDArray x : m.expAvgUnc) {
        out.add(x.toFloatVector());
      }
      float[] k = new float[m.rank() + 1];
      for (int i = 0; i < m.rank(); i++) {
        k[i] = m.kept[i] ? 1 : 0;
      }
      k[m.rank()] = m.decided ? 1 : 0;
      out.add(k);
    }
    return out;
  }

  /** Loads values[from..] (in {@link #names} order) into the modules; a mask entry >= 0.5 keeps its rank. */
  public static void load(AdapterSet set, String[] names, float[][] values, int from) {
    List<String> want = names(set);
    if (values.length - from != want.size()) {
      throw new IllegalStateException("AdaLoRA state has " + (values.length - from) + " tensors, expected "
          + want.size());
    }
    int i = from;
    for (AdaLoraModule m : set.adaLoraModules()) {
      for (int t = 0; t < 3; t++, i++) {
        copy(names[i], want.get(i - from), values[i], m.expAvgIpt[t]);
      }
      for (int t = 0; t < 3; t++, i++) {
        copy(names[i], want.get(i - from), values[i], m.expAvgUnc[t]);
      }
      float[] k = values[i];
      check(names[i], want.get(i - from), k.length, m.rank() + 1);
      for (int r = 0; r < m.rank(); r++) {
        m.kept[r] = k[r] >= 0.5f;
      }
      m.decided = k[m.rank()] >= 0.5f;
      i++;
    }
  }

  private static void copy(String name, String want, float[] src, INDArray dst) {
    check(name, want, src.length, dst.length());
    dst.assign(Nd4j.create(src, new long[] {src.length}, 'c'));
  }

  private static void check(String name, String want, long length, long expected) {
    if (!name.equals(want) || length != expected) {
      throw new IllegalStateException("AdaLoRA state tensor " + name + " [" + length + "] does not fit " + want
          + " [" + expected + "]");
    }
  }

  /**
   * The driver's allocation after a distributed round (RankAllocator.allocateRound) on named
   * arrays, as AdapterState carries them: rebuilds each module from its lora_A, lora_E, lora_B and
   * adalora.* arrays, allocates, and returns new arrays (E masked, masks and EMAs updated), the
   * others shared. No model config is needed: shapes follow from E's length.
   */
  public static float[][] allocateRound(String[] names, float[][] values, AdaLoraConfig cfg, long start, long end) {
    java.util.Map<String, Integer> index = new java.util.HashMap<>();
    for (int i = 0; i < names.length; i++) {
      index.put(names[i], i);
    }
    List<AdaLoraModule> mods = new ArrayList<>();
    List<String> prefixes = new ArrayList<>();
    for (String n : names) {
      if (!n.endsWith(".lora_E") || n.contains(".adalora.")) {
        continue;
      }
      String prefix = n.substring(0, n.length() - ".lora_E".length());
      float[] e = values[index.get(n)];
      float[] a = values[index.get(prefix + ".lora_A")];
      float[] b = values[index.get(prefix + ".lora_B")];
      int r = e.length;
      AdaLoraModule m = new AdaLoraModule(prefix.substring("base_model.model.".length()),
          org.nd4j.linalg.factory.Nd4j.create(a, new long[] {r, a.length / r}, 'c'),
          org.nd4j.linalg.factory.Nd4j.create(e, new long[] {r, 1}, 'c'),
          org.nd4j.linalg.factory.Nd4j.create(b, new long[] {b.length / r, r}, 'c'), 1, r, 0);
      String p = prefix + ".adalora.";
      for (int t = 0; t < 3; t++) {
        String ipt = p + "exp_avg_ipt." + PARTS[t];
        String unc = p + "exp_avg_unc." + PARTS[t];
        copy(ipt, ipt, values[index.get(ipt)], m.expAvgIpt[t]);
        copy(unc, unc, values[index.get(unc)], m.expAvgUnc[t]);
      }
      float[] k = values[index.get(p + "kept")];
      for (int i = 0; i < r; i++) {
        m.kept[i] = k[i] >= 0.5f;
      }
      m.decided = k[r] >= 0.5f;
      mods.add(m);
      prefixes.add(prefix);
    }
    new RankAllocator(cfg, mods).allocateRound(start, end);
    float[][] out = values.clone();
    for (int j = 0; j < mods.size(); j++) {
      AdaLoraModule m = mods.get(j);
      String prefix = prefixes.get(j);
      out[index.get(prefix + ".lora_E")] = m.e.data().asFloat();
      String p = prefix + ".adalora.";
      for (int t = 0; t < 3; t++) {
        out[index.get(p + "exp_avg_ipt." + PARTS[t])] = m.expAvgIpt[t].toFloatVector();
        out[index.get(p + "exp_avg_unc." + PARTS[t])] = m.expAvgUnc[t].toFloatVector();
      }
      float[] k = new float[m.rank() + 1];
      for (int i = 0; i < m.rank(); i++) {
        k[i] = m.kept[i] ? 1 : 0;
      }
      k[m.rank()] = m.decided ? 1 : 0;
      out[index.get(p + "kept")] = k;
    }
    return out;
  }
}
