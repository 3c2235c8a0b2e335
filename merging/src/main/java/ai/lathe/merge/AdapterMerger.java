package ai.lathe.merge;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.adapter.AdapterDeltas;
import ai.lathe.model.adapter.LoraConfig;
import ai.lathe.model.io.AtomicDir;
import ai.lathe.model.io.Hashing;
import ai.lathe.model.io.HfCheckpoint;
import ai.lathe.model.io.PeftAdapter;
import ai.lathe.model.io.PeftKeys;
import ai.lathe.model.io.PeftAdapterFile;
import ai.lathe.model.io.Safetensors;
import ai.lathe.model.io.StreamingCheckpointWriter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Merges LoRA adapters one module at a time on their dense updates ΔW = s·B·A (never on A and B
 * separately): a module an adapter does not target counts as zero there. The result is a rank-r
 * adapter (truncated SVD, error reported per module) or the base model with the update added, as
 * a Hugging Face checkpoint. Modules are merged in {@link ModuleWorkspace}s (one per thread,
 * buffers reused across modules), so peak memory is threads × one module's updates, whatever the
 * depth; merging into the base streams tensor by tensor, sharded like the input.
 */
public final class AdapterMerger {
  /** What a merge produced: per-module truncation errors (adapter output) and provenance. */
  public record Result(Map<String, Double> truncationErrors, ObjectNode manifest) {}

  /** Called at the end of each module's merge (benchmarks measure live memory there). */
  static volatile Runnable moduleHook;

  private AdapterMerger() {}

  /**
   * An adapter opened for reading one module at a time (file null where only provenance is
   * needed), through the same validating loader as every other command: its config and tensors
   * agree with each other and with the model before anything is merged.
   */
  record Source(MergeConfig.Input in, Path dir, PeftAdapterFile file) {
    LoraConfig config() {
      return file.config();
    }
  }

  public static Result run(MergeConfig mc, Path modelConfigFrom) throws IOException {
    LlamaConfig model = LlamaConfig.read(modelConfigFrom.resolve("config.json"));
    List<Source> sources = open(mc, model);
    try {
      return mc.outputKind().equals("adapter") ? mergeToAdapter(mc, model, sources) : mergeToModel(mc, model, sources);
    } finally {
      close(sources);
    }
  }

  /** Opens and validates every input adapter against the model; closes what it opened on failure. */
  static List<Source> open(MergeConfig mc, LlamaConfig model) throws IOException {
    List<Source> sources = new ArrayList<>();
    try {
      for (MergeConfig.Input in : mc.adapters()) {
        Path d = Path.of(in.path());
        sources.add(new Source(in, d, PeftAdapterFile.open(d, model)));
      }
      return sources;
    } catch (IOException | RuntimeException e) {
      close(sources);
      throw e;
    }
  }

  static void close(List<Source> sources) throws IOException {
    for (Source s : sources) {
      s.file().close();
    }
  }

  /** The dense update of one module in one adapter, or null when the adapter does not target it. */
  static float[] delta(Source s, int layer, String module, int out, int in) throws IOException {
    return delta(s, layer, module, out, in, null);
  }

  /**
   * The base weight of one module as the adapters saw it: read from base_model, and with
   * quantize: nf4 its NF4 round trip (an adapter trained on a 4-bit base is merged into the
   * dequantised weights, never into the 4-bit codes).
   */
  static float[] baseWeight(MergeConfig mc, int layer, String module, int out, int in) throws IOException {
    try (HfCheckpoint ck = HfCheckpoint.open(Path.of(mc.baseModel()))) {
      String key = LlamaWeights.moduleKey(layer, module);
      return ck.isQuantized(key) ? ck.readWeight(key, out, in)
          : dequantized(ck.read(key, out, in), out, in, mc.baseQuantize());
    }
  }

  static float[] dequantized(float[] w, int out, int in, String quant) {
    if (quant.equals("none")) {
      return w;
    }
    INDArray q = ai.lathe.model.nn.Nf4Linear.quantize(Nd4j.create(w, new long[] {out, in}, 'c'), quant.equals("nf4-dq"),
        org.nd4j.linalg.api.buffer.DataType.FLOAT).dense();
    return q.data().asFloat();
  }

  /**
   * As above; DoRA adapters need the base weight W (base null: read it from mc): their update is
   * m/‖W + s·B·A‖ ⊙ (W + s·B·A) − W.
   */
  static float[] delta(Source s, int layer, String module, int out, int in, float[] base, MergeConfig mc)
      throws IOException {
    float[] d = delta(s, layer, module, out, in, null);
    if (d == null || !s.config().useDora()) {
      return d;
    }
    float[] w = base != null ? base : baseWeight(mc, layer, module, out, in);
    float[] m = s.file().read(s.file().keys(layer, module).magnitude()); // validated: [out]
    AdapterDeltas.doraInPlace(w, d, m, out, in);
    return d;
  }

  /**
   * LoRA's s·B·A of one module, or null when the adapter does not adapt it (a module outside
   * target_modules, or a layer outside layers_to_transform).
   */
  static float[] delta(Source s, int layer, String module, int out, int in, Void plain) throws IOException {
    PeftAdapterFile.Keys keys = s.file().keys(layer, module);
    if (keys == null) {
      return null;
    }
    String path = LoraConfig.modulePath(layer, module);
    int r = s.file().rank(layer, module); // shapes validated on open: A [r, in], B [out, r]
    float[] v = AdapterDeltas.lora(s.file().read(keys.loraA()), s.file().read(keys.loraB()), out, r, in,
        s.config().scaleFor(path));
    for (float x : v) {
      if (!Float.isFinite(x)) {
        throw new IllegalArgumentException(s.file().weightsFile() + ": non-finite values in " + path);
      }
    }
    return v;
  }

  /** Merges one module; null when no adapter targets it. */
  static float[] mergeModule(MergeConfig mc, List<Source> sources, int layer, String module, int out, int in)
      throws IOException {
    return mergeModule(mc, sources, layer, module, out, in, null);
  }

  /** As above; base: this module's (dequantised) base weight when the caller has it, for DoRA adapters. */
  static float[] mergeModule(MergeConfig mc, List<Source> sources, int layer, String module, int out, int in,
      float[] base) throws IOException {
    List<float[]> deltas = new ArrayList<>();
    boolean any = false;
    for (Source s : sources) {
      float[] d = delta(s, layer, module, out, in, base, mc);
      any |= d != null;
      deltas.add(d == null ? new float[out * in] : d);
    }
    if (!any) {
      return null;
    }
    double[] w = new double[sources.size()];
    double[] dens = new double[sources.size()];
    for (int i = 0; i < w.length; i++) {
      w[i] = sources.get(i).in().weight();
      dens[i] = sources.get(i).in().density();
    }
    long moduleSeed = layer * 16L + LlamaWeights.MODULES.indexOf(module);
    float[] merged = mc.method().merge(deltas, w, dens, mc.params(), moduleSeed);
    Runnable hook = moduleHook;
    if (hook != null) {
      hook.run(); // while this module's updates are still alive: the bench samples live memory here
    }
    return merged;
  }

  /** One module's merged update re-factored to low rank. */
  public record ModuleFactors(int layer, String module, float[] a, float[] b, int rank, double error)
      implements java.io.Serializable {}

  /** Every (layer, module) of the model, in checkpoint order. */
  public static List<int[]> allModules(LlamaConfig model) {
    List<int[]> out = new ArrayList<>();
    for (int l = 0; l < model.numLayers(); l++) {
      for (int m = 0; m < LlamaWeights.MODULES.size(); m++) {
        out.add(new int[] {l, m});
      }
    }
    return out;
  }

  /**
   * Merges and re-factors the given (layer, module index) pairs, opening the adapters itself: the
   * unit of work a Spark task runs when modules are spread over executors. One thread: the
   * executor's task slots are the parallelism there (and each slot holds one workspace).
   */
  public static List<ModuleFactors> factorModules(MergeConfig mc, LlamaConfig model, List<int[]> which)
      throws IOException {
    List<Source> sources = open(mc, model);
    try {
      return factorModules(mc, model, sources, which, 1);
    } finally {
      close(sources);
    }
  }

  /**
   * Threads that merge modules at once (each with its own {@link ModuleWorkspace}): the system
   * property lathe.merge.threads, else the cores.
   */
  static int threads() {
    return Math.max(1, Integer.getInteger("lathe.merge.threads", Runtime.getRuntime().availableProcessors()));
  }

  static List<ModuleFactors> factorModules(MergeConfig mc, LlamaConfig model, List<Source> sources, List<int[]> which)
      throws IOException {
    return factorModules(mc, model, sources, which, threads());
  }

  /** Merges and re-factors modules on the given number of threads, each with its own workspace. */
  static List<ModuleFactors> factorModules(MergeConfig mc, LlamaConfig model, List<Source> sources, List<int[]> which,
      int threads) throws IOException {
    int t = Math.max(1, Math.min(threads, which.size()));
    java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(t, r -> {
      Thread th = new Thread(r, "lathe-merge");
      th.setDaemon(true);
      return th;
    });
    ThreadLocal<ModuleWorkspace> work = ThreadLocal.withInitial(ModuleWorkspace::new);
    try {
      List<java.util.concurrent.Future<ModuleFactors>> futures = new ArrayList<>();
      for (int[] lm : which) {
        futures.add(pool.submit(() -> factorModule(mc, model, sources, work.get(), lm[0], lm[1])));
      }
      List<ModuleFactors> out = new ArrayList<>();
      for (var f : futures) {
        ModuleFactors mf = join(f);
        if (mf != null) {
          out.add(mf);
        }
      }
      return out;
    } finally {
      pool.shutdownNow();
    }
  }

  /** One module merged in a workspace and re-factored; null when no adapter targets it. */
  static ModuleFactors factorModule(MergeConfig mc, LlamaConfig model, List<Source> sources, ModuleWorkspace ws,
      int layer, int moduleIndex) throws IOException {
    String m = LlamaWeights.MODULES.get(moduleIndex);
    int[] shape = model.moduleShape(m);
    float[] merged = ws.merge(mc, sources, layer, m, shape[0], shape[1], null);
    Runnable hook = moduleHook;
    if (hook != null) {
      hook.run();
    }
    if (merged == null) {
      return null;
    }
    long t0 = System.nanoTime();
    LowRank.Factors f = LowRank.factor(merged, shape[0], shape[1], mc.outputRank(), layer * 16L + 1);
    ModuleWorkspace.MATH_NANOS.add(System.nanoTime() - t0);
    return new ModuleFactors(layer, m, f.a(), f.b(), f.rank(), f.relativeError());
  }

  /** A task's result, with its IOException or unchecked exception rethrown as itself. */
  static <T> T join(java.util.concurrent.Future<T> f) throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("merge interrupted", e);
    } catch (java.util.concurrent.ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException io) {
        throw io;
      }
      if (c instanceof RuntimeException re) {
        throw re;
      }
      if (c instanceof Error er) {
        throw er;
      }
      throw new IOException(c);
    }
  }

  /**
   * The reference path (one module at a time, fresh arrays, {@link #mergeModule}): what
   * {@link #factorModules} must reproduce; kept for the equivalence test.
   */
  static List<ModuleFactors> factorModulesReference(MergeConfig mc, LlamaConfig model, List<Source> sources,
      List<int[]> which) throws IOException {
    List<ModuleFactors> out = new ArrayList<>();
    for (int[] lm : which) {
      String m = LlamaWeights.MODULES.get(lm[1]);
      int[] shape = model.moduleShape(m);
      float[] merged = mergeModule(mc, sources, lm[0], m, shape[0], shape[1]);
      if (merged != null) {
        LowRank.Factors f = LowRank.factor(merged, shape[0], shape[1], mc.outputRank(), lm[0] * 16L + 1);
        out.add(new ModuleFactors(lm[0], m, f.a(), f.b(), f.rank(), f.relativeError()));
      }
    }
    return out;
  }

  static Result mergeToAdapter(MergeConfig mc, LlamaConfig model, List<Source> sources) throws IOException {
    List<ModuleFactors> factors = factorModules(mc, model, sources, allModules(model));
    long t0 = System.nanoTime();
    Result r = writeAdapter(mc, model, factors);
    ModuleWorkspace.IO_NANOS.add(System.nanoTime() - t0);
    return r;
  }

  /** Writes factored modules (from this JVM or from executors) as a PEFT adapter, atomically. */
  public static Result writeAdapter(MergeConfig mc, LlamaConfig model, List<ModuleFactors> factors) throws IOException {
    List<Source> sources = new ArrayList<>();
    for (MergeConfig.Input in : mc.adapters()) {
      Path d = Path.of(in.path());
      sources.add(new Source(in, d, null));
    }
    Map<String, Safetensors.Tensor> tensors = new LinkedHashMap<>();
    Map<String, Double> errors = new LinkedHashMap<>();
    List<String> targets = new ArrayList<>();
    List<ModuleFactors> sorted = new ArrayList<>(factors);
    sorted.sort((x, y) -> x.layer() != y.layer() ? Integer.compare(x.layer(), y.layer())
        : Integer.compare(LlamaWeights.MODULES.indexOf(x.module()), LlamaWeights.MODULES.indexOf(y.module())));
    for (ModuleFactors f : sorted) {
      int[] shape = model.moduleShape(f.module());
      if (!targets.contains(f.module())) {
        targets.add(f.module());
      }
      String path = LoraConfig.modulePath(f.layer(), f.module());
      tensors.put(PeftKeys.loraA(path), new Safetensors.Tensor(new long[] {f.rank(), shape[1]}, f.a()));
      tensors.put(PeftKeys.loraB(path), new Safetensors.Tensor(new long[] {shape[0], f.rank()}, f.b()));
      errors.put(path, f.error());
    }
    targets.sort((x, y) -> LlamaWeights.MODULES.indexOf(x) - LlamaWeights.MODULES.indexOf(y));
    List<Integer> layers = completeLayers(model, sorted, targets, tensors);
    // rank r with lora_alpha r: scaling 1, so B·A is the merged update itself
    int r = mc.outputRank();
    Map<String, Integer> rankPattern = new LinkedHashMap<>();
    for (String k : tensors.keySet()) {
      String path = PeftKeys.pathOfLoraA(k);
      if (path != null && tensors.get(k).shape()[0] != r) {
        rankPattern.put(path, (int) tensors.get(k).shape()[0]);
      }
    }
    Map<String, Double> alphaPattern = new LinkedHashMap<>();
    rankPattern.forEach((k, v) -> alphaPattern.put(k, (double) v));
    LoraConfig lc = new LoraConfig(r, r, targets, 0.0, false, false, rankPattern, alphaPattern,
        layers.size() == model.numLayers() ? null : layers);
    ObjectNode manifest = manifest(mc, sources, errors);
    ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    AtomicDir.write(Path.of(mc.outputPath()), tmp -> {
      om.writeValue(tmp.resolve(PeftAdapter.CONFIG).toFile(), lc.toPeftJson(mc.baseModel() == null ? "" : mc.baseModel()));
      Safetensors.write(tmp.resolve(PeftAdapter.WEIGHTS), tensors, "F32", Map.of("format", "pt"));
      om.writeValue(tmp.resolve("lathe-merge.json").toFile(), manifest);
    });
    return new Result(errors, manifest);
  }

  /**
   * The layers any input adapted (inputs with layers_to_transform may leave some alone): the
   * output's layers_to_transform. Within those layers every target module needs tensors, so a
   * module no input adapted there gets zero rank-1 factors (a zero update, as in the merge).
   */
  static List<Integer> completeLayers(LlamaConfig model, List<ModuleFactors> factors, List<String> targets,
      Map<String, Safetensors.Tensor> tensors) {
    java.util.TreeSet<Integer> layers = new java.util.TreeSet<>();
    factors.forEach(f -> layers.add(f.layer()));
    for (int l : layers) {
      for (String m : targets) {
        String path = LoraConfig.modulePath(l, m);
        if (!tensors.containsKey(PeftKeys.loraA(path))) {
          int[] shape = model.moduleShape(m);
          tensors.put(PeftKeys.loraA(path), new Safetensors.Tensor(new long[] {1, shape[1]}, new float[shape[1]]));
          tensors.put(PeftKeys.loraB(path), new Safetensors.Tensor(new long[] {shape[0], 1}, new float[shape[0]]));
        }
      }
    }
    return List.copyOf(layers);
  }

  static Result mergeToModel(MergeConfig mc, LlamaConfig model, List<Source> sources) throws IOException {
    Path base = Path.of(mc.baseModel());
    ObjectNode manifest = manifest(mc, sources, Map.of());
    try (HfCheckpoint ck = HfCheckpoint.open(base)) {
      // every tensor of the family (Qwen2 biases, Qwen3 head norms are copied like the norms)
      LinkedHashMap<String, long[]> shapes = HfCheckpoint.shapes(model);
      // the output is sharded like the input: the same files holding the same tensors, in file order
      LinkedHashMap<String, long[]> ordered = new LinkedHashMap<>();
      List<List<String>> shards = new ArrayList<>();
      for (List<String> file : ck.layout()) {
        List<String> g = new ArrayList<>();
        for (String name : file) {
          if (shapes.containsKey(name) && !ordered.containsKey(name)) {
            g.add(name);
            ordered.put(name, shapes.get(name));
          }
        }
        if (!g.isEmpty()) {
          shards.add(g);
        }
      }
      for (String name : shapes.keySet()) {
        if (!ordered.containsKey(name)) {
          throw new IOException(base + ": tensor '" + name + "' not found in the checkpoint");
        }
      }
      ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
      ModuleWorkspace ws = new ModuleWorkspace();
      AtomicDir.write(Path.of(mc.outputPath()), tmp -> {
        try (StreamingCheckpointWriter w = new StreamingCheckpointWriter(tmp, ordered, mc.outputDtype(), shards)) {
          for (var e : ordered.entrySet()) {
            String name = e.getKey();
            String[] parts = name.split("\\.");
            boolean proj = parts.length == 6 && name.startsWith("model.layers.") && name.endsWith("_proj.weight");
            if (proj) {
              mergeProjection(mc, sources, ck, ws, w, name, Integer.parseInt(parts[2]), parts[4]);
            } else {
              // everything else (embeddings, norms, lm_head) streams through in slices, never whole
              long t0 = System.nanoTime();
              if (!java.util.Arrays.equals(ck.entry(name).shape(), e.getValue())) {
                throw new IOException(base + ": tensor '" + name + "' has shape "
                    + java.util.Arrays.toString(ck.entry(name).shape()) + ", expected "
                    + java.util.Arrays.toString(e.getValue()));
              }
              w.put(name, (start, dst, count) -> ck.readSlice(name, start, dst, count));
              ModuleWorkspace.IO_NANOS.add(System.nanoTime() - t0);
            }
          }
        }
        ObjectNode cfg = model.toJson();
        cfg.put("torch_dtype", mc.outputDtype().equals("BF16") ? "bfloat16" : "float32");
        om.writeValue(tmp.resolve("config.json").toFile(), cfg);
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
          if (Files.exists(base.resolve(f))) {
            Files.copy(base.resolve(f), tmp.resolve(f));
          }
        }
        om.writeValue(tmp.resolve("lathe-merge.json").toFile(), manifest);
      });
    }
    return new Result(Map.of(), manifest);
  }

  /**
   * One projection of the merged model: its base weight (a pre-quantised one dequantised; with
   * quantize: nf4 its NF4 round trip, which the adapters saw) plus the merged update.
   */
  static void mergeProjection(MergeConfig mc, List<Source> sources, HfCheckpoint ck, ModuleWorkspace ws,
      StreamingCheckpointWriter w, String name, int layer, String module) throws IOException {
    int[] shape = ck.config().moduleShape(module);
    long t0 = System.nanoTime();
    float[] v = ck.isQuantized(name) ? ck.readWeight(name, shape[0], shape[1]) : ck.read(name, shape[0], shape[1]);
    ModuleWorkspace.IO_NANOS.add(System.nanoTime() - t0);
    if (!ck.isQuantized(name)) {
      v = dequantized(v, shape[0], shape[1], mc.baseQuantize());
    }
    float[] merged = ws.merge(mc, sources, layer, module, shape[0], shape[1], v);
    Runnable hook = moduleHook;
    if (hook != null) {
      hook.run();
    }
    if (merged != null) {
      for (int i = 0; i < v.length; i++) {
        v[i] += merged[i];
        if (!Float.isFinite(v[i])) {
          throw new IllegalArgumentException(name + ": merged weight is not finite");
        }
      }
    }
    long t1 = System.nanoTime();
    w.put(name, v);
    ModuleWorkspace.IO_NANOS.add(System.nanoTime() - t1);
  }

  static ObjectNode manifest(MergeConfig mc, List<Source> sources, Map<String, Double> errors) throws IOException {
    ObjectMapper om = new ObjectMapper();
    ObjectNode m = om.createObjectNode();
    m.put("method", mc.method().id);
    m.put("code_version", ai.lathe.model.Version.get());
    m.put("base_model", mc.baseModel());
    ObjectNode p = m.putObject("parameters");
    p.put("density", mc.density());
    p.put("sign", mc.params().sign());
    p.put("normalize", mc.params().normalize());
    p.put("lambda", mc.params().lambda());
    p.put("seed", mc.params().seed());
    ArrayNode in = m.putArray("inputs");
    for (Source s : sources) {
      in.addObject().put("path", s.dir().toString()).put("weight", s.in().weight()).put("density", s.in().density())
          .put("sha256", Hashing.sha256(s.dir().resolve(PeftAdapter.WEIGHTS)));
    }
    ObjectNode out = m.putObject("output");
    out.put("kind", mc.outputKind());
    out.put("rank", mc.outputRank());
    if (!errors.isEmpty()) {
      ObjectNode e = out.putObject("truncation_error");
      errors.forEach(e::put);
      out.put("max_truncation_error", errors.values().stream().mapToDouble(Double::doubleValue).max().orElse(0));
    }
    return m;
  }
}
