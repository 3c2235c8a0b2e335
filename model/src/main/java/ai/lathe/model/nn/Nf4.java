package ai.lathe.model.nn;

/**
 * bitsandbytes' 4-bit NormalFloat code book and its 8-bit dynamic map (for double quantisation),
 * with nearest-value quantisation as bitsandbytes' kernels do it.
 */
public final class Nf4 {
  private Nf4() {}

  /** bitsandbytes' NF4 values (csrc kernels.cu, the QLoRA paper's appendix), index = 4-bit code. */
  public static final float[] CODE = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
      -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,
      0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
      0.7229568362236023f, 1.0f};

  public static final int BLOCK = 64;
  public static final int NESTED_BLOCK = 256;

  /** The 4-bit code nearest to x (x already divided by the block's absmax, in [-1, 1]). */
  public static int nearest4(float x) {
    // midpoints between neighbours, as bitsandbytes' decision tree
    int lo = 0;
    for (int k = 1; k < 16; k++) {
      if (x > (CODE[k - 1] + CODE[k]) / 2) {
        lo = k;
      } else {
        break;
      }
    }
    return lo;
  }

  /**
   * bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for exponent
   * i = 0..6, the midpoints of linspace(0.1, 1, 2^i + 1) times 10^(i−6), both signs, plus 0 and 1,
   * sorted (256 values).
   */
  public static float[] dynamicMap() {
    return DYNAMIC.clone();
  }

  /** The shared copy when map is the dynamic map (read from a file), else map itself. */
  public static float[] shareDynamic(float[] map) {
    return java.util.Arrays.equals(map, DYNAMIC) ? DYNAMIC : map;
  }

  /** One shared copy for every double-quantised weight (bitsandbytes keeps one per weight). */
  static final float[] DYNAMIC = buildDynamicMap();

  private static float[] buildDynamicMap() {
    float[] data = new float[256];
    int n = 0;
    for (int i = 0; i < 7; i++) {
      int items = (1 << i) + 1;
      float[] b = linspace(0.1f, 1f, items);
      double scale = Math.pow(10, -(7 - 1) + i);
      for (int k = 0; k + 1 < items; k++) {
        float mean = (b[k] + b[k + 1]) / 2.0f;
        data[n++] = (float) (scale * mean);
        data[n++] = (float) (-scale * mean);
      }
    }
    data[n++] = 0f;
    data[n++] = 1f;
    java.util.Arrays.sort(data);
    return data;
  }

  /** torch.linspace in float32: start + i·step below the middle, end − (n−1−i)·step from it. */
  static float[] linspace(float start, float end, int steps) {
    float[] r = new float[steps];
    if (steps == 1) {
      r[0] = start;
      return r;
    }
    float step = (end - start) / (steps - 1);
    int half = steps / 2;
    for (int i = 0; i < steps; i++) {
      r[i] = i < half ? start + step * i : end - step * (steps - i - 1);
    }
    return r;
  }

  /** Index of the map value nearest to x (map sorted ascending). */
  public static int nearest8(float[] map, float x) {
    int lo = 0;
    int hi = map.length - 1;
    while (hi - lo > 1) {
      int mid = (lo + hi) >>> 1;
      if (map[mid] <= x) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    return Math.abs(map[hi] - x) < Math.abs(x - map[lo]) ? hi : lo;
  }
}
