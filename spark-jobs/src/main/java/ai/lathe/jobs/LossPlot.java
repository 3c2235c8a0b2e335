package ai.lathe.jobs;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;

/** A PNG of loss curves (one series per name: points of step → value), drawn with Java2D. */
public final class LossPlot {
  private static final Color[] COLORS = {new Color(31, 119, 180), new Color(255, 127, 14), new Color(44, 160, 44),
      new Color(214, 39, 40), new Color(148, 103, 189)};

  private LossPlot() {}

  public static void write(Path png, String title, Map<String, List<double[]>> series) throws IOException {
    int w = 800;
    int h = 480;
    int l = 70;
    int r = 20;
    int t = 40;
    int b = 50;
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, w, h);
    double x0 = Double.POSITIVE_INFINITY;
    double x1 = Double.NEGATIVE_INFINITY;
    double y0 = Double.POSITIVE_INFINITY;
    double y1 = Double.NEGATIVE_INFINITY;
    for (List<double[]> s : series.values()) {
      for (double[] p : s) {
        if (Double.isFinite(p[1])) {
          x0 = Math.min(x0, p[0]);
          x1 = Math.max(x1, p[0]);
          y0 = Math.min(y0, p[1]);
          y1 = Math.max(y1, p[1]);
        }
      }
    }
    if (!Double.isFinite(x0)) {
      x0 = 0;
      x1 = 1;
      y0 = 0;
      y1 = 1;
    }
    if (x1 == x0) {
      x1 = x0 + 1;
    }
    if (y1 == y0) {
      y1 = y0 + 1;
    }
    double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    g.setColor(Color.BLACK);
    g.drawRect(l, t, w - l - r, h - t - b);
    g.drawString(title, l, 25);
    g.drawString("step", w / 2, h - 10);
    for (int i = 0; i <= 4; i++) {
      double yv = y0 + (y1 - y0) * i / 4;
      int yp = (int) (h - b - (h - t - b) * i / 4.0);
      g.drawString(String.format("%.3f", yv), 5, yp + 4);
      double xv = x0 + (x1 - x0) * i / 4;
      int xp = (int) (l + (w - l - r) * i / 4.0);
      g.drawString(String.format("%.0f", xv), xp - 10, h - b + 18);
    }
    int ci = 0;
    int legendY = t + 20;
    for (var e : series.entrySet()) {
      g.setColor(COLORS[ci++ % COLORS.length]);
      g.setStroke(new BasicStroke(2f));
      int px = -1;
      int py = -1;
      for (double[] p : e.getValue()) {
        if (!Double.isFinite(p[1])) {
          continue;
        }
        int x = (int) (l + (p[0] - x0) / (x1 - x0) * (w - l - r));
        int y = (int) (h - b - (p[1] - y0) / (y1 - y0) * (h - t - b));
        if (px >= 0) {
          g.drawLine(px, py, x, y);
        }
        g.fillOval(x - 3, y - 3, 6, 6);
        px = x;
        py = y;
      }
      g.drawString(e.getKey(), w - r - 150, legendY);
      legendY += 16;
    }
    g.dispose();
    ImageIO.write(img, "png", png.toFile());
  }
}
