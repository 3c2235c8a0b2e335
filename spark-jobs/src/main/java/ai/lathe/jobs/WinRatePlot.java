package ai.lathe.jobs;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * A PNG of win rates per group (language): one bar for the win rate with its 95% (Wilson) interval as
 * whiskers and one for the length-controlled win rate, on a 0-1 axis with the ½ line; drawn with
 * Java2D as LossPlot.
 */
final class WinRatePlot {
  private WinRatePlot() {}

  /** rates: group → {win rate, its 95% interval's lower and upper bound, length-controlled win rate}. */
  static void write(Path png, String title, Map<String, double[]> rates) throws IOException {
    int w = Math.max(480, 120 + 110 * rates.size());
    int h = 420;
    int l = 60;
    int r = 20;
    int t = 50;
    int b = 50;
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, w, h);
    g.setColor(Color.BLACK);
    g.drawRect(l, t, w - l - r, h - t - b);
    g.drawString(title, l, 20);
    g.setColor(new Color(31, 119, 180));
    g.fillRect(l, 28, 10, 10);
    g.setColor(Color.BLACK);
    g.drawString("win rate (95% interval)", l + 14, 38);
    g.setColor(new Color(255, 127, 14));
    g.fillRect(l + 160, 28, 10, 10);
    g.setColor(Color.BLACK);
    g.drawString("length-controlled", l + 174, 38);
    int plotH = h - t - b;
    for (int i = 0; i <= 4; i++) {
      int y = h - b - plotH * i / 4;
      g.drawString(String.format("%.2f", i / 4.0), 20, y + 4);
    }
    int half = h - b - plotH / 2;
    g.setColor(Color.GRAY);
    g.drawLine(l, half, w - r, half);
    int slot = (w - l - r) / Math.max(1, rates.size());
    int i = 0;
    for (var e : rates.entrySet()) {
      int x0 = l + i * slot + slot / 6;
      int bw = slot / 3;
      double[] v = e.getValue();
      bar(g, x0, bw, h - b, plotH, v[0], new Color(31, 119, 180));
      bar(g, x0 + bw, bw, h - b, plotH, v[3], new Color(255, 127, 14));
      if (Double.isFinite(v[1]) && Double.isFinite(v[2])) {
        int xc = x0 + bw / 2;
        int lo = (int) (h - b - plotH * clamp(v[1]));
        int hi = (int) (h - b - plotH * clamp(v[2]));
        g.setColor(Color.BLACK);
        g.drawLine(xc, lo, xc, hi);
        g.drawLine(xc - 4, lo, xc + 4, lo);
        g.drawLine(xc - 4, hi, xc + 4, hi);
      }
      g.setColor(Color.BLACK);
      g.drawString(e.getKey(), x0, h - b + 18);
      i++;
    }
    g.dispose();
    ImageIO.write(img, "png", png.toFile());
  }

  private static void bar(Graphics2D g, int x, int bw, int base, int plotH, double v, Color c) {
    if (!Double.isFinite(v)) {
      return;
    }
    int hh = (int) (plotH * clamp(v));
    g.setColor(c);
    g.fillRect(x, base - hh, bw - 2, hh);
  }

  private static double clamp(double v) {
    return Math.max(0, Math.min(1, v));
  }
}
