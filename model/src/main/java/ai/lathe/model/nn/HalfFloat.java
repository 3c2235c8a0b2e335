package ai.lathe.model.nn;

/**
 * IEEE binary16 (F16) and bfloat16 (BF16) to and from float, as torch converts: widening is exact,
 * narrowing rounds to nearest even (F16 overflows to infinity, underflows through subnormals).
 */
public final class HalfFloat {
  private HalfFloat() {}

  /** bf16 is the top half of a float's bits. */
  public static float bf16(short s) {
    return Float.intBitsToFloat((s & 0xffff) << 16);
  }

  public static short toBf16(float f) {
    if (Float.isNaN(f)) {
      return (short) 0x7fc0;
    }
    int bits = Float.floatToRawIntBits(f);
    return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
  }

  /** f16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; exponent 0 is subnormal, 31 inf/NaN. */
  public static float f16(short h) {
    int bits = h & 0xffff;
    int sign = (bits >>> 15) << 31;
    int exp = (bits >>> 10) & 0x1f;
    int mant = bits & 0x3ff;
    if (exp == 0) {
      float v = mant * 0x1p-24f;
      return sign == 0 ? v : -v;
    }
    if (exp == 31) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
  }

  /** Nearest f16 (ties to even), by scaling into the subnormal grid or rounding the mantissa. */
  public static short toF16(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    float a = Math.abs(f);
    if (Float.isNaN(f)) {
      return (short) (sign | 0x7e00);
    }
    if (a >= 65520f) { // rounds past the largest finite f16 (65504)
      return (short) (sign | 0x7c00);
    }
    if (a < 0x1p-14f) { // subnormal: multiples of 2^-24, rint ties to even
      return (short) (sign | (int) Math.rint(a * 0x1p24f));
    }
    int ab = bits & 0x7fffffff;
    int r = ab + 0xfff + ((ab >>> 13) & 1); // round the 13 dropped mantissa bits to nearest even
    return (short) (sign | (((r >>> 23) - 127 + 15) << 10 | (r >>> 13) & 0x3ff));
  }
}
