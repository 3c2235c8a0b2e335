package ai.lathe.model.io;

import ai.lathe.model.LlamaConfig;
import ai.lathe.model.LlamaWeights;
import ai.lathe.model.nn.Buf;
import ai.lathe.model.nn.DenseLinear;
import ai.lathe.model.nn.FrozenLinear;
import ai.lathe.model.nn.Nf4Blocks;
import ai.lathe.model.nn.Nf4Linear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Reads and writes Hugging Face model folders: {@code config.json} plus {@code model.safetensors}
 * or shards listed in {@code model.safetensors.index.json}.
 */
public final class HfCheckpoint implements AutoCloseable {
  public static final String SINGLE = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";

  private final Path dir;
  private final LlamaConfig config;
  private final Map<String, Safetensors> byTensor = new HashMap<>();
  private final List<Safetensors> files = new ArrayList<>();

  private HfCheckpoint(Path dir) throws IOException {
    this.dir = dir;
    if (!Files.isDirectory(dir)) {
      throw new IOException(dir + ": model folder not found");
    }
    this.config = LlamaConfig.read(dir.resolve("config.json"));
    try {
      Path index = dir.resolve(INDEX);
      if (Files.exists(index)) {
        JsonNode map;
        try {
          map = new ObjectMapper().readTree(index.toFile()).path("weight_map");
        } catch (IOException e) {
          throw new IOException(index + ": not valid JSON: " + e.getMessage(), e);
        }
        if (!map.isObject()) {
          throw new IOException(index + ": missing 'weight_map'");
        }
        Map<String, Safetensors> opened = new HashMap<>();
        var it = map.fields();
        while (it.hasNext()) {
          var e = it.next();
          String shard = e.getValue().asText();
          Safetensors st = opened.get(shard);
          if (st == null) {
            st = Safetensors.open(dir.resolve(shard));
            opened.put(shard, st);
            files.add(st);
          }
          if (!st.has(e.getKey())) {
            throw new IOException(st.file() + ": tensor '" + e.getKey() + "' listed in " + INDEX
                + " is not in the shard");
          }
          byTensor.put(e.getKey(), st);
        }
      } else {
        Safetensors st = Safetensors.open(dir.resolve(SINGLE));
        files.add(st);
        for (String name : st.entries().keySet()) {
          byTensor.put(name, st);
        }
      }
    } catch (IOException | RuntimeException e) {
      close();
      throw e;
    }
  }

  public static HfCheckpoint open(Path dir) throws IOException {
    return new HfCheckpoint(dir);
  }

  public LlamaConfig config() {
    return config;
  }

  public Path dir() {
    return dir;
  }

  public boolean has(String name) {
    return byTensor.containsKey(name);
  }

  public float[] read(String name, long... shape) throws IOException {
    Safetensors st = byTensor.get(name);
    if (st == null) {
      throw new IOException(dir + ": tensor '" + name + "' not found in the checkpoint");
    }
    return st.readFloats(name, shape);
  }

  /** Elements [start, start + count) of a tensor as floats into dst (see {@link Safetensors#readFloats(String, long, float[], int)}). */
  public void readSlice(String name, long start, float[] dst, int count) throws IOException {
    file(name).readFloats(name, start, dst, count);
  }

  /** A tensor's header entry (dtype, shape, offsets). */
  public Safetensors.Entry entry(String name) throws IOException {
    return file(name).entry(name);
  }

  /**
   * The checkpoint's layout: the tensor names of each file (files by name, so shards in order),
   * each file's tensors by their position in the file.
   */
  public List<List<String>> layout() {
    List<Safetensors> byName = new ArrayList<>(files);
    byName.sort(java.util.Comparator.comparing(st -> st.file().getFileName().toString()));
    List<List<String>> out = new ArrayList<>();
    for (Safetensors st : byName) {
      List<String> names = new ArrayList<>();
      for (Safetensors.Entry e : st.entries().values()) {
        if (byTensor.get(e.name()) == st) {
          names.add(e.name());
        }
      }
      names.sort(java.util.Comparator.comparingLong(n -> st.entries().get(n).begin()));
      out.add(names);
    }
    return out;
  }

  /** A [out, in] weight as floats; a pre-quantised (bitsandbytes NF4) one is dequantised. */
  public float[] readWeight(String name, int out, int in) throws IOException {
    if (byTensor.containsKey(name + BnbNf4.STATE)) {
      return BnbNf4.read(this::file, name, out, in, DataType.FLOAT).dense().data().asFloat();
    }
    return read(name, out, in);
  }

  /** The file holding a tensor (shards may split a weight's quantisation parts). */
  Safetensors file(String name) throws IOException {
    Safetensors st = byTensor.get(name);
    if (st == null) {
      throw new IOException(dir + ": tensor '" + name + "' not found in the checkpoint");
    }
    return st;
  }

  /** Whether the checkpoint holds this weight pre-quantised. */
  public boolean isQuantized(String name) {
    return byTensor.containsKey(name + BnbNf4.STATE);
  }

  /** Loads a whole checkpoint into memory. */
  public static LlamaWeights load(Path dir, DataType dtype) throws IOException {
    return load(dir, dtype, "none", false);
  }

  /**
   * Loads a checkpoint with its projections held as quantize (none | nf4): each projection is
   * quantised as it is read, so only one dense projection is alive at a time.
   */
  public static LlamaWeights load(Path dir, DataType dtype, String quantize, boolean doubleQuant) throws IOException {
    if (!quantize.equals("none") && !quantize.equals("nf4")) {
      throw new IllegalArgumentException("quantize must be none or nf4, got '" + quantize + "'");
    }
    try (HfCheckpoint ck = open(dir)) {
      ck.quantize = quantize;
      ck.doubleQuant = doubleQuant;
      return ck.weights(dtype);
    }
  }

  private String quantize = "none";
  private boolean doubleQuant;

  public LlamaWeights weights(DataType dtype) throws IOException {
    LlamaConfig c = config;
    long d = c.hiddenSize();
    Buf embed = matrix(HfLayout.EMBED, c.vocabSize(), d, dtype);
    LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.numLayers()];
    for (int i = 0; i < layers.length; i++) {
      layers[i] = new LlamaWeights.Layer(
          vec(read(HfLayout.attnNorm(i), d), dtype),
          lin(i, "q_proj", dtype), lin(i, "k_proj", dtype), lin(i, "v_proj", dtype), lin(i, "o_proj", dtype),
          vec(read(HfLayout.mlpNorm(i), d), dtype),
          lin(i, "gate_proj", dtype), lin(i, "up_proj", dtype), lin(i, "down_proj", dtype),
          extra(c.qkvBias(), HfLayout.bias(i, "q_proj"), c.qDim(), dtype),
          extra(c.qkvBias(), HfLayout.bias(i, "k_proj"), c.kvDim(), dtype),
          extra(c.qkvBias(), HfLayout.bias(i, "v_proj"), c.kvDim(), dtype),
          extra(c.qkNorm(), HfLayout.headNorm(i, "q"), c.headDim(), dtype),
          extra(c.qkNorm(), HfLayout.headNorm(i, "k"), c.headDim(), dtype));
      checkAbsent(HfLayout.bias(i, "o_proj"), "o_proj has no bias in any supported family");
    }
    Buf norm = vec(read(HfLayout.FINAL_NORM, d), dtype);
    FrozenLinear head;
    if (c.tieWordEmbeddings()) {
      // tied: the head is embed_tokens; a stored lm_head must at least agree in shape
      if (has(HfLayout.LM_HEAD)) {
        long[] s = file(HfLayout.LM_HEAD).entry(HfLayout.LM_HEAD).shape();
        if (!java.util.Arrays.equals(s, new long[] {c.vocabSize(), d})) {
          throw new IOException(file(HfLayout.LM_HEAD).file() + ": tensor '" + HfLayout.LM_HEAD + "' has shape "
              + java.util.Arrays.toString(s) + " but tie_word_embeddings is true in " + dir.resolve("config.json")
              + " and embed_tokens is [" + c.vocabSize() + ", " + d + "]");
        }
      }
      head = linear(embed);
    } else {
      head = linear(matrix(HfLayout.LM_HEAD, c.vocabSize(), d, dtype));
    }
    return new LlamaWeights(c, embed, layers, norm, head);
  }

  /**
   * A family's extra vector (Qwen2 bias, Qwen3 head norm): required when the config's model_type
   * has it, refused when it does not (the weights would otherwise be silently dropped).
   */
  private Buf extra(boolean wanted, String key, int len, DataType dtype) throws IOException {
    if (!wanted) {
      checkAbsent(key, "model_type " + config.modelType() + " has no such tensor");
      return null;
    }
    if (!has(key)) {
      throw new IOException(dir + ": tensor '" + key + "' not found in the checkpoint (model_type "
          + config.modelType() + " in " + dir.resolve("config.json") + " needs it)");
    }
    return vec(read(key, len), dtype);
  }

  private void checkAbsent(String key, String why) throws IOException {
    if (has(key)) {
      throw new IOException(file(key).file() + ": unexpected tensor '" + key + "' (" + why + "; check model_type "
          + "and attention_bias in " + dir.resolve("config.json") + ")");
    }
  }

  /** Every tensor a checkpoint of this config holds, in writing order ({@link HfLayout#shapes}). */
  public static LinkedHashMap<String, long[]> shapes(LlamaConfig c) {
    return HfLayout.shapes(c);
  }

  private FrozenLinear lin(int layer, String module, DataType dtype) throws IOException {
    int[] s = config.moduleShape(module);
    String key = HfLayout.weight(layer, module);
    if (byTensor.containsKey(key + BnbNf4.STATE)) {
      // pre-quantised (bitsandbytes NF4, e.g. written by lathe quantize): kept as 4-bit
      return BnbNf4.read(this::file, key, s[0], s[1], dtype);
    }
    if (quantize.equals("nf4")) {
      return quantizeStreamed(key, s[0], s[1], doubleQuant, dtype);
    }
    return linear(matrix(key, s[0], s[1], dtype));
  }

  /** Elements per slice when quantising as we read (a whole number of NF4 blocks; 4 MiB of floats). */
  static final int SLICE = 1 << 20;

  /**
   * Reads a [out, in] weight slice by slice and quantises each slice as it arrives (Nf4Blocks), so
   * neither a dense copy of the weight nor a mapping of the file is ever held: memory is the NF4
   * codes plus one slice. Equal, bit for bit, to quantising the fully loaded weight.
   */
  public Nf4Linear quantizeStreamed(String key, int out, int in, boolean doubleQuant, DataType dtype)
      throws IOException {
    return quantizeStreamed(key, out, in, doubleQuant, dtype, SLICE);
  }

  /** As above, in slices of sliceElems values (a whole number of NF4 blocks). */
  Nf4Linear quantizeStreamed(String key, int out, int in, boolean doubleQuant, DataType dtype, int sliceElems)
      throws IOException {
    Safetensors st = file(key);
    long[] shape = st.entry(key).shape();
    if (!java.util.Arrays.equals(shape, new long[] {out, in})) {
      throw new IOException(st.file() + ": tensor '" + key + "' has shape " + java.util.Arrays.toString(shape)
          + ", expected [" + out + ", " + in + "]");
    }
    Nf4Blocks q = new Nf4Blocks(out, in);
    float[] slice = new float[(int) Math.min(sliceElems, (long) out * in)];
    for (long start = 0; q.remaining() > 0; start += slice.length) {
      int count = (int) Math.min(slice.length, q.remaining());
      st.readFloats(key, start, slice, count);
      q.accept(slice, count);
    }
    return q.finish(doubleQuant, dtype, st.file() + ": " + key);
  }

  /**
   * A frozen [rows, cols] matrix as held in memory: a BF16/F16 tensor stays 16-bit when the engine
   * runs in float (widened per call; widening is exact, so results equal an F32 copy's); an F32
   * tensor, or any tensor for a double-precision engine, is converted to the engine's dtype.
   */
  private Buf matrix(String key, long rows, long cols, DataType dtype) throws IOException {
    Safetensors st = file(key);
    String stored = st.entry(key).dtype();
    if (dtype == DataType.FLOAT && (stored.equals("BF16") || stored.equals("F16"))) {
      Buf.Half h = Buf.Half.zeros(stored.equals("BF16"), rows, cols);
      st.readRaw(key, stored, new long[] {rows, cols}, h.rawBytes());
      return h;
    }
    return Buf.of(arr(read(key, rows, cols), dtype, rows, cols));
  }

  private static FrozenLinear linear(Buf w) {
    return w instanceof Buf.Half h ? new ai.lathe.model.nn.HalfLinear(h) : new DenseLinear(w.arr);
  }

  private static Buf vec(float[] v, DataType dtype) {
    return Buf.of(arr(v, dtype, v.length));
  }

  static INDArray arr(float[] v, DataType dtype, long... shape) {
    INDArray a = Nd4j.create(v, shape, 'c');
    return dtype == DataType.FLOAT ? a : a.castTo(dtype);
  }

  @Override
  public void close() throws IOException {
    for (Safetensors st : files) {
      st.close();
    }
  }

  // ------------------------------------------------------------------ writing

  /** All tensors of the weights, under Hugging Face names, as float arrays. */
  public static Map<String, Safetensors.Tensor> tensors(LlamaWeights w) {
    LlamaConfig c = w.config;
    Map<String, Safetensors.Tensor> t = new LinkedHashMap<>();
    t.put(HfLayout.EMBED, tensor(w.embed instanceof Buf.Half h
        ? new ai.lathe.model.nn.HalfLinear(h).dense() : w.embed.arr));
    for (int i = 0; i < c.numLayers(); i++) {
      LlamaWeights.Layer l = w.layers[i];
      t.put(HfLayout.attnNorm(i), tensor(l.attnNorm().arr));
      t.put(HfLayout.mlpNorm(i), tensor(l.mlpNorm().arr));
      for (String m : HfLayout.MODULES) {
        t.put(HfLayout.weight(i, m), tensor(l.module(m).dense()));
      }
      if (l.qBias() != null) {
        t.put(HfLayout.bias(i, "q_proj"), tensor(l.qBias().arr));
        t.put(HfLayout.bias(i, "k_proj"), tensor(l.kBias().arr));
        t.put(HfLayout.bias(i, "v_proj"), tensor(l.vBias().arr));
      }
      if (l.qNorm() != null) {
        t.put(HfLayout.headNorm(i, "q"), tensor(l.qNorm().arr));
        t.put(HfLayout.headNorm(i, "k"), tensor(l.kNorm().arr));
      }
    }
    t.put(HfLayout.FINAL_NORM, tensor(w.finalNorm.arr));
    if (!c.tieWordEmbeddings()) {
      t.put(HfLayout.LM_HEAD, tensor(w.lmHead.dense()));
    }
    return t;
  }

  static Safetensors.Tensor tensor(INDArray a) {
    return new Safetensors.Tensor(a.shape(), a.castTo(DataType.FLOAT).dup('c').data().asFloat());
  }

  /**
   * Writes a model folder atomically (config.json and safetensors, sharded above
   * {@code maxShardBytes}), copying tokenizer files from {@code tokenizerDir} when given.
   */
  public static void write(Path out, LlamaConfig config, Map<String, Safetensors.Tensor> tensors,
      String dtype, long maxShardBytes, Path tokenizerDir) throws IOException {
    AtomicDir.write(out, tmp -> {
      LinkedHashMap<String, long[]> shapes = new LinkedHashMap<>();
      tensors.forEach((k, v) -> shapes.put(k, v.shape()));
      try (StreamingCheckpointWriter w = new StreamingCheckpointWriter(tmp, shapes, dtype, maxShardBytes)) {
        for (var e : tensors.entrySet()) {
          w.put(e.getKey(), e.getValue().data());
        }
      }
      writeConfigAndTokenizer(tmp, config, dtype, tokenizerDir);
    });
  }

  /** config.json (with torch_dtype) and the tokenizer files copied from tokenizerDir when given. */
  public static void writeConfigAndTokenizer(Path tmp, LlamaConfig config, String dtype, Path tokenizerDir)
      throws IOException {
    ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode cfg = config.toJson();
    cfg.put("torch_dtype", dtype.equals("BF16") ? "bfloat16" : "float32");
    om.writeValue(tmp.resolve("config.json").toFile(), cfg);
    if (tokenizerDir != null) {
      for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
        Path src = tokenizerDir.resolve(f);
        if (Files.exists(src)) {
          Files.copy(src, tmp.resolve(f));
        }
      }
      if (!Files.exists(tmp.resolve("tokenizer_config.json"))) {
        ObjectNode tc = om.createObjectNode();
        tc.put("tokenizer_class", "LlamaTokenizerFast");
        tc.put("bos_token", "<s>");
        tc.put("eos_token", "</s>");
        tc.put("unk_token", "<unk>");
        tc.put("add_bos_token", true);
        tc.put("add_eos_token", false);
        tc.put("model_max_length", config.maxPositionEmbeddings());
        om.writeValue(tmp.resolve("tokenizer_config.json").toFile(), tc);
      }
    }
  }
}
