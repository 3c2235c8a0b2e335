package ai.lathe.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class MinHashTest {
  static double jaccard(Set<Long> a, Set<Long> b) {
    Set<Long> i = new HashSet<>(a);
    i.retainAll(b);
    Set<Long> u = new HashSet<>(a);
    u.addAll(b);
    return i.size() / (double) u.size();
  }

  @Test
  void signatureAgreementEstimatesJaccard() {
    MinHash mh = new MinHash(256, 1);
    String x = "Debian is a free operating system for your computer, developed by volunteers around the world.";
    String y = "Debian is a free operating system for your computer, developed by many volunteers around the globe.";
    String z = "The quick brown fox jumps over the lazy dog while the cat watches from the window sill.";
    double jxy = jaccard(MinHash.shingles(x), MinHash.shingles(y));
    assertEquals(jxy, MinHash.similarity(mh.signature(x), mh.signature(y)), 0.08);
    assertTrue(MinHash.similarity(mh.signature(x), mh.signature(z)) < 0.1);
    assertEquals(1.0, MinHash.similarity(mh.signature(x), mh.signature(x.toUpperCase())));
  }

  @Test
  void bandingApproximatesTheThreshold() {
    int r = MinHash.rowsPerBand(128, 0.8);
    double t = Math.pow(1.0 / (128 / r), 1.0 / r);
    assertTrue(Math.abs(t - 0.8) < 0.1, "r=" + r + " threshold " + t);
  }
}
