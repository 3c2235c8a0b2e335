package ai.lathe.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LossPlotTest {
  /** Pixels of a panel that are neither white nor grey (series lines, markers, legend swatches). */
  static int coloured(BufferedImage img, int y0, int y1) {
    int n = 0;
    for (int y = y0; y < y1; y++) {
      for (int x = 0; x < img.getWidth(); x++) {
        int rgb = img.getRGB(x, y);
        int r = (rgb >> 16) & 0xff;
        int g = (rgb >> 8) & 0xff;
        int b = rgb & 0xff;
        n += Math.max(r, Math.max(g, b)) - Math.min(r, Math.min(g, b)) > 60 ? 1 : 0;
      }
    }
    return n;
  }

  @Test
  void panelsStackWithTheirSeries(@TempDir Path tmp) throws Exception {
    Map<String, List<double[]>> loss = Map.of("train loss", List.of(new double[] {1, 8}, new double[] {2, 0.5},
        new double[] {3, Double.NaN}), "val loss", List.of(new double[] {2, 0.7}));
    Map<String, List<double[]>> empty = Map.of("rewards/margins", List.of());
    Path png = tmp.resolve("p.png");
    LossPlot.write(png, List.of(new LossPlot.Panel("loss", loss), new LossPlot.Panel("rewards", empty)));
    BufferedImage img = ImageIO.read(png.toFile());
    assertEquals(LossPlot.WIDTH, img.getWidth());
    assertEquals(2 * LossPlot.PANEL_HEIGHT, img.getHeight());
    int withData = coloured(img, 0, LossPlot.PANEL_HEIGHT);
    int without = coloured(img, LossPlot.PANEL_HEIGHT, 2 * LossPlot.PANEL_HEIGHT);
    assertTrue(withData > 200 && withData > 2 * without, withData + " coloured pixels vs " + without);
  }

  @Test
  void logScaleOnlyForPositiveSeriesSpanningTwoDecades() {
    assertTrue(LossPlot.logScale(Map.of("a", List.of(new double[] {0, 80}, new double[] {1, 0.5}))));
    assertFalse(LossPlot.logScale(Map.of("a", List.of(new double[] {0, 8}, new double[] {1, 0.5}))));
    assertFalse(LossPlot.logScale(Map.of("a", List.of(new double[] {0, 80}, new double[] {1, -0.5}))));
    assertTrue(LossPlot.logScale(Map.of("a", List.of(new double[] {0, 80}, new double[] {1, 0.5},
        new double[] {2, Double.NaN}))));
  }
}
