package ai.lathe.jobs;

import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.XYStyler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * PNGs of training curves drawn by XChart: one or more panels stacked vertically, each with its
 * series (points of step → value), a legend, and a log-scale y axis where it helps (a loss that
 * stays positive and spans more than two decades).
 */
public final class LossPlot {
  static final int WIDTH = 800;
  static final int PANEL_HEIGHT = 480;

  /** One panel: a title and its series by legend name (non-finite values are skipped). */
  public record Panel(String title, Map<String, List<double[]>> series) {}

  private LossPlot() {}

  /** One panel. */
  public static void write(Path png, String title, Map<String, List<double[]>> series) throws IOException {
    write(png, List.of(new Panel(title, series)));
  }

  public static void write(Path png, List<Panel> panels) throws IOException {
    BufferedImage img = new BufferedImage(WIDTH, PANEL_HEIGHT * panels.size(), BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    for (int i = 0; i < panels.size(); i++) {
      Graphics2D pg = (Graphics2D) g.create(0, i * PANEL_HEIGHT, WIDTH, PANEL_HEIGHT);
      chart(panels.get(i)).paint(pg, WIDTH, PANEL_HEIGHT);
      pg.dispose();
    }
    g.dispose();
    ImageIO.write(img, "png", png.toFile());
  }

  static XYChart chart(Panel p) {
    XYChart c = new XYChartBuilder().width(WIDTH).height(PANEL_HEIGHT).title(p.title()).xAxisTitle("step").build();
    XYStyler st = c.getStyler();
    st.setLegendPosition(Styler.LegendPosition.InsideNE);
    st.setChartBackgroundColor(java.awt.Color.WHITE);
    st.setYAxisLogarithmic(logScale(p.series()));
    st.setYAxisDecimalPattern("#0.###");
    st.setXAxisTickMarkSpacingHint(80); // about ten step labels across, however many rounds
    boolean any = false;
    for (var e : p.series().entrySet()) {
      List<Double> xs = new ArrayList<>();
      List<Double> ys = new ArrayList<>();
      for (double[] pt : e.getValue()) {
        if (Double.isFinite(pt[0]) && Double.isFinite(pt[1])) {
          xs.add(pt[0]);
          ys.add(pt[1]);
        }
      }
      if (!xs.isEmpty()) {
        XYSeries s = c.addSeries(e.getKey(), xs, ys);
        s.setMarker(SeriesMarkers.CIRCLE);
        s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        any = true;
      }
    }
    if (!any) {
      c.addSeries("(no data)", new double[] {0}, new double[] {0});
    }
    return c;
  }

  /**
   * Log y when every finite value is positive and spans over two decades (XChart labels a log axis
   * at powers of ten: fewer decades would leave it with one label).
   */
  static boolean logScale(Map<String, List<double[]>> series) {
    double lo = Double.POSITIVE_INFINITY;
    double hi = 0;
    for (List<double[]> s : series.values()) {
      for (double[] p : s) {
        if (Double.isFinite(p[1])) {
          if (p[1] <= 0) {
            return false;
          }
          lo = Math.min(lo, p[1]);
          hi = Math.max(hi, p[1]);
        }
      }
    }
    return hi > 100 * lo;
  }
}
