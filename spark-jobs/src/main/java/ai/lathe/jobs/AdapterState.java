package ai.lathe.jobs;

import ai.lathe.model.adapter.AdaLoraState;
import ai.lathe.model.adapter.AdapterSet;
import ai.lathe.model.adapter.Param;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.train.AdamW;
import java.io.Serializable;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * What travels between driver and executors: the adapter's tensors and (optionally) AdamW's
 * moments as plain float arrays (INDArrays cannot go through Spark's serializers), plus the
 * optimizer step. Sums of states are averaged on the driver.
 */
public record AdapterState(String[] names, float[][] params, float[][] m, float[][] v, long step)
    implements Serializable {

  public static AdapterState of(AdapterSet a, AdamW opt) {
    // AdaLoRA's EMAs and masks travel and average as tensors after the params (no moments)
    return of(a.params(), AdaLoraState.names(a), AdaLoraState.values(a), opt);
  }

  /** Any trainable tensors (adapters, or a model's own weights in train.mode full) and their optimizer. */
  public static AdapterState of(List<Param> ps, AdamW opt) {
    return of(ps, List.of(), List.of(), opt);
  }

  private static AdapterState of(List<Param> ps, List<String> extraNames, List<float[]> extra, AdamW opt) {
    int n = ps.size() + extra.size();
    String[] names = new String[n];
    float[][] p = new float[n][];
    for (int i = 0; i < ps.size(); i++) {
      names[i] = ps.get(i).name();
      p[i] = ps.get(i).value().castTo(DataType.FLOAT).dup('c').data().asFloat();
    }
    for (int i = 0; i < extra.size(); i++) {
      names[ps.size() + i] = extraNames.get(i);
      p[ps.size() + i] = extra.get(i);
    }
    float[][] m = null;
    float[][] v = null;
    if (opt != null) {
      float[][] s = opt.state();
      m = new float[n][];
      v = new float[n][];
      for (int i = 0; i < n; i++) {
        m[i] = i < ps.size() ? s[2 * i] : new float[p[i].length];
        v[i] = i < ps.size() ? s[2 * i + 1] : new float[p[i].length];
      }
    }
    return new AdapterState(names, p, m, v, opt == null ? 0 : opt.stepCount());
  }

  /** Copies the tensors into the adapter (and the moments into the optimizer when both exist). */
  public void applyTo(AdapterSet a, AdamW opt) {
    List<Param> ps = a.params();
    if (ps.size() + AdaLoraState.names(a).size() != params.length) {
      throw new IllegalStateException("adapter has " + ps.size() + " tensors, state has " + params.length);
    }
    AdaLoraState.load(a, names, params, ps.size());
    applyParams(ps, opt);
  }

  /** Copies the tensors into these params, by name and order (moments as above). */
  public void applyTo(List<Param> ps, AdamW opt) {
    if (ps.size() != params.length) {
      throw new IllegalStateException("model has " + ps.size() + " trainable tensors, state has " + params.length);
    }
    applyParams(ps, opt);
  }

  private void applyParams(List<Param> ps, AdamW opt) {
    for (int i = 0; i < ps.size(); i++) {
      if (!ps.get(i).name().equals(names[i])) {
        throw new IllegalStateException("tensor " + i + " is " + ps.get(i).name() + ", state has " + names[i]);
      }
      Buf b = Buf.of(ps.get(i).value());
      for (int j = 0; j < params[i].length; j++) {
        b.set(j, params[i][j]);
      }
    }
    if (opt != null && m != null) {
      float[][] s = new float[2 * ps.size()][];
      for (int i = 0; i < ps.size(); i++) {
        s[2 * i] = m[i];
        s[2 * i + 1] = v[i];
      }
      opt.loadState(s, step);
    } else if (opt != null) {
      opt.loadState(zeros(2, ps.size()), 0);
    }
  }

  private float[][] zeros(int factor, int count) {
    float[][] z = new float[factor * count][];
    for (int i = 0; i < z.length; i++) {
      z[i] = new float[params[i / factor].length];
    }
    return z;
  }

  /** Element-wise sum (both must carry moments or neither). */
  public AdapterState plus(AdapterState o) {
    return new AdapterState(names, add(params, o.params), m == null ? null : add(m, o.m),
        v == null ? null : add(v, o.v), Math.max(step, o.step));
  }

  public AdapterState times(double s) {
    return new AdapterState(names, mul(params, s), m == null ? null : mul(m, s), v == null ? null : mul(v, s), step);
  }

  /** The same state without optimizer moments. */
  public AdapterState withoutMoments() {
    return new AdapterState(names, params, null, null, step);
  }

  public AdapterState withStep(long s) {
    return new AdapterState(names, params, m, v, s);
  }

  static float[][] add(float[][] a, float[][] b) {
    float[][] r = new float[a.length][];
    for (int i = 0; i < a.length; i++) {
      r[i] = new float[a[i].length];
      for (int j = 0; j < a[i].length; j++) {
        r[i][j] = a[i][j] + b[i][j];
      }
    }
    return r;
  }

  static float[][] mul(float[][] a, double s) {
    float[][] r = new float[a.length][];
    for (int i = 0; i < a.length; i++) {
      r[i] = new float[a[i].length];
      for (int j = 0; j < a[i].length; j++) {
        r[i][j] = (float) (a[i][j] * s);
      }
    }
    return r;
  }

  public long bytes() {
    long n = 0;
    for (float[] p : params) {
      n += 4L * p.length;
    }
    return m == null ? n : 3 * n;
  }

  /** AdaLoRA's driver-side allocation after a round of steps [start, end) (identity for other adapters). */
  public AdapterState allocateAdaLora(ai.lathe.model.adapter.LoraConfig lc, int totalSteps, long start, long end) {
    if (lc.adalora() == null) {
      return this;
    }
    ai.lathe.model.adapter.AdaLoraConfig c = lc.adalora().totalStep() > 0 ? lc.adalora()
        : lc.adalora().withTotalStep(totalSteps);
    return new AdapterState(names, AdaLoraState.allocateRound(names, params, c, start, end), m, v, step);
  }
}
