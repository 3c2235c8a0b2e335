package ai.lathe.model.text;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * The Python str methods chat templates call on strings (Jinja runs on Python strings, Jinjava
 * on Java ones): startswith, endswith, strip/lstrip/rstrip (whitespace, or the given characters),
 * split (on whitespace, or a separator), upper, lower, replace. Anything else is left to the next
 * resolver.
 */
final class PyStringMethods extends ELResolver {

  @Override
  public Object invoke(ELContext ctx, Object base, Object method, Class<?>[] types, Object[] args) {
    if (!(base instanceof String s) || method == null) {
      return null;
    }
    Object[] a = args == null ? new Object[0] : args;
    Object r = call(s, method.toString(), a);
    if (r != NONE) {
      ctx.setPropertyResolved(true);
      return r;
    }
    return null;
  }

  private static final Object NONE = new Object();

  static Object call(String s, String name, Object[] a) {
    String arg0 = a.length > 0 && a[0] != null ? a[0].toString() : null;
    return switch (name) {
      case "startswith" -> arg0 != null && s.startsWith(arg0);
      case "endswith" -> arg0 != null && s.endsWith(arg0);
      case "strip" -> rstrip(lstrip(s, arg0), arg0);
      case "lstrip" -> lstrip(s, arg0);
      case "rstrip" -> rstrip(s, arg0);
      case "split" -> split(s, arg0);
      case "upper" -> s.toUpperCase(Locale.ROOT);
      case "lower" -> s.toLowerCase(Locale.ROOT);
      case "replace" -> a.length == 2 ? s.replace(arg0, String.valueOf(a[1])) : NONE;
      default -> NONE;
    };
  }

  /** Python's lstrip: with chars null, whitespace; otherwise any of the given characters. */
  static String lstrip(String s, String chars) {
    int i = 0;
    while (i < s.length() && strips(s.charAt(i), chars)) {
      i++;
    }
    return s.substring(i);
  }

  static String rstrip(String s, String chars) {
    int j = s.length();
    while (j > 0 && strips(s.charAt(j - 1), chars)) {
      j--;
    }
    return s.substring(0, j);
  }

  private static boolean strips(char c, String chars) {
    return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
  }

  /** Python's split: a separator splits exactly (keeping empty parts); none splits on whitespace runs. */
  static List<String> split(String s, String sep) {
    List<String> out = new ArrayList<>();
    if (sep == null) {
      for (String p : s.strip().split("\\s+")) {
        if (!p.isEmpty()) {
          out.add(p);
        }
      }
      return out;
    }
    if (sep.isEmpty()) {
      throw new IllegalArgumentException("split: empty separator");
    }
    int from = 0;
    for (int i = s.indexOf(sep); i >= 0; i = s.indexOf(sep, from)) {
      out.add(s.substring(from, i));
      from = i + sep.length();
    }
    out.add(s.substring(from));
    return out;
  }

  @Override
  public Object getValue(ELContext ctx, Object base, Object property) {
    return null;
  }

  @Override
  public Class<?> getType(ELContext ctx, Object base, Object property) {
    return null;
  }

  @Override
  public void setValue(ELContext ctx, Object base, Object property, Object value) {
  }

  @Override
  public boolean isReadOnly(ELContext ctx, Object base, Object property) {
    return false;
  }

  @Override
  public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext ctx, Object base) {
    return null;
  }

  @Override
  public Class<?> getCommonPropertyType(ELContext ctx, Object base) {
    return null;
  }
}
