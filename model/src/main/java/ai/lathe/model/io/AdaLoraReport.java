package ai.lathe.model.io;

import ai.lathe.model.adapter.AdaLoraExport;
import ai.lathe.model.adapter.AdaLoraModule;
import ai.lathe.model.adapter.AdapterSet;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * Where an AdaLoRA run's rank budget went, written beside the adapter: adalora-budget.json (kept
 * ranks per layer and module, totals, parameter counts) and adalora-budget.png (a heat map, layers
 * down, modules across, each cell its kept ranks out of init_r); with export_lora, lora/ holds the
 * equivalent plain LoRA folder (AdaLoraExport) for tools that do not know AdaLoRA.
 */
public final class AdaLoraReport {
  public static final String JSON = "adalora-budget.json";
  public static final String PNG = "adalora-budget.png";
  public static final String LORA_DIR = "lora";

  private AdaLoraReport() {}

  /** Kept ranks as [layer][module index in targets]; -1 where the layer is not adapted. */
  static int[][] grid(AdapterSet a, List<String> targets) {
    int[][] g = new int[a.numLayers()][targets.size()];
    for (int l = 0; l < g.length; l++) {
      for (int j = 0; j < targets.size(); j++) {
        g[l][j] = a.module(l, targets.get(j)) instanceof AdaLoraModule m ? m.keptCount() : -1;
      }
    }
    return g;
  }

  public static ObjectNode json(AdapterSet a) {
    List<String> targets = a.config().targetModules();
    int[][] g = grid(a, targets);
    ObjectMapper om = new ObjectMapper();
    ObjectNode o = om.createObjectNode();
    int initR = a.config().adalora().initR();
    o.put("init_r", initR);
    o.put("target_r", a.config().adalora().targetR());
    int kept = 0;
    int modules = 0;
    long params = 0;
    ObjectNode per = o.putObject("kept_ranks");
    for (int l = 0; l < g.length; l++) {
      ObjectNode row = per.putObject(Integer.toString(l));
      for (int j = 0; j < targets.size(); j++) {
        if (g[l][j] >= 0) {
          row.put(targets.get(j), g[l][j]);
          kept += g[l][j];
          modules++;
          AdaLoraModule m = (AdaLoraModule) a.module(l, targets.get(j));
          params += (long) g[l][j] * (m.loraA().size(1) + m.loraB().size(0) + 1);
        }
      }
    }
    o.put("modules", modules);
    o.put("kept_total", kept);
    o.put("init_budget", modules * initR);
    o.put("target_budget", modules * a.config().adalora().targetR());
    o.put("decided", a.adaLoraModules().stream().anyMatch(AdaLoraModule::decided));
    o.put("kept_parameters", params);
    ObjectNode byModule = o.putObject("kept_by_module");
    for (int j = 0; j < targets.size(); j++) {
      int s = 0;
      for (int[] row : g) {
        s += Math.max(0, row[j]);
      }
      byModule.put(targets.get(j), s);
    }
    return o;
  }

  /** The heat map: white (0 kept) to dark blue (init_r kept), the count written in each cell. */
  static void png(Path file, AdapterSet a) throws IOException {
    List<String> targets = a.config().targetModules();
    int[][] g = grid(a, targets);
    int initR = a.config().adalora().initR();
    int cw = 64;
    int ch = Math.max(10, Math.min(24, 640 / Math.max(1, g.length)));
    int left = 48;
    int top = 40;
    int w = left + cw * targets.size() + 16;
    int h = top + ch * g.length + 16;
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    Graphics2D gr = img.createGraphics();
    gr.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    gr.setColor(Color.WHITE);
    gr.fillRect(0, 0, w, h);
    gr.setColor(Color.BLACK);
    gr.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
    gr.drawString("AdaLoRA kept ranks (of " + initR + ")", left, 14);
    for (int j = 0; j < targets.size(); j++) {
      gr.drawString(targets.get(j), left + j * cw + 2, top - 6);
    }
    for (int l = 0; l < g.length; l++) {
      gr.setColor(Color.BLACK);
      gr.drawString(Integer.toString(l), 8, top + l * ch + ch - 3);
      for (int j = 0; j < targets.size(); j++) {
        int k = g[l][j];
        double f = k < 0 ? 0 : (double) k / initR;
        gr.setColor(k < 0 ? Color.LIGHT_GRAY : new Color((int) (255 - 225 * f), (int) (255 - 180 * f), (int) (255 - 75 * f)));
        gr.fillRect(left + j * cw, top + l * ch, cw - 1, ch - 1);
        if (k >= 0 && ch >= 12) {
          gr.setColor(f > 0.5 ? Color.WHITE : Color.BLACK);
          gr.drawString(Integer.toString(k), left + j * cw + cw / 2 - 6, top + l * ch + ch - 3);
        }
      }
    }
    gr.dispose();
    ImageIO.write(img, "png", file.toFile());
  }

  /** Writes the report (and the LoRA export when asked) into an adapter folder being committed. */
  static void write(Path dir, AdapterSet a, String baseModel) throws IOException {
    ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    om.writeValue(dir.resolve(JSON).toFile(), json(a));
    png(dir.resolve(PNG), a);
    if (a.config().adalora().exportLora()) {
      AdaLoraExport.Lora lora = AdaLoraExport.toLora(a);
      Path d = dir.resolve(LORA_DIR);
      Files.createDirectories(d);
      om.writeValue(d.resolve(PeftAdapter.CONFIG).toFile(), lora.config().toPeftJson(baseModel));
      Safetensors.write(d.resolve(PeftAdapter.WEIGHTS), lora.tensors(), "F32", Map.of("format", "pt"));
    }
  }
}
