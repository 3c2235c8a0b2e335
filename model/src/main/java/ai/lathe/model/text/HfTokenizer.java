package ai.lathe.model.text;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A Hugging Face tokenizer.json, through the DJL binding of the tokenizers library (offline).
 * Knows its vocabulary size (model vocabulary plus added tokens) and its bos/eos tokens.
 */
public final class HfTokenizer implements AutoCloseable {
  private final HuggingFaceTokenizer tok;
  private final Path file;
  private final int vocabSize;
  private final String bos;
  private final String eos;
  private final int bosId;
  private final int eosId;
  private final String sha256;
  private final JinjaChatTemplate chatTemplate;

  private HfTokenizer(Path file) throws IOException {
    this.file = file;
    if (!Files.isRegularFile(file)) {
      throw new IOException(file + ": tokenizer.json not found");
    }
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new IOException(file + ": not valid JSON: " + e.getMessage(), e);
    }
    int max = -1;
    JsonNode vocab = root.path("model").path("vocab");
    if (vocab.isObject()) {
      for (var it = vocab.elements(); it.hasNext(); ) {
        max = Math.max(max, it.next().asInt());
      }
    } else if (vocab.isArray()) {
      max = vocab.size() - 1; // unigram: [[piece, score], ...]
    }
    for (JsonNode t : root.path("added_tokens")) {
      max = Math.max(max, t.path("id").asInt());
    }
    if (max < 0) {
      throw new IOException(file + ": no vocabulary found in model.vocab");
    }
    this.vocabSize = max + 1;
    Path cfg = file.resolveSibling("tokenizer_config.json");
    String b = "<s>";
    String e = "</s>";
    if (Files.exists(cfg)) {
      JsonNode c = new ObjectMapper().readTree(cfg.toFile());
      b = tokenText(c.path("bos_token"), b);
      e = tokenText(c.path("eos_token"), e);
    }
    this.bos = b;
    this.eos = e;
    this.tok = HuggingFaceTokenizer.newInstance(file, Map.of("addSpecialTokens", "false",
        "truncation", "false", "padding", "false", "maxLength", "1000000"));
    this.bosId = (int) tok.encode(bos, false, false).getIds()[0];
    this.eosId = (int) tok.encode(eos, false, false).getIds()[0];
    this.sha256 = ai.lathe.model.io.Hashing.sha256(file);
    this.chatTemplate = JinjaChatTemplate.load(file);
  }

  private static String tokenText(JsonNode n, String dflt) {
    if (n.isTextual()) {
      return n.asText();
    }
    if (n.isObject() && n.has("content")) {
      return n.path("content").asText();
    }
    return dflt;
  }

  /** Opens tokenizer.json from a model folder (or the file itself). */
  public static HfTokenizer open(Path dirOrFile) throws IOException {
    Path f = Files.isDirectory(dirOrFile) ? dirOrFile.resolve("tokenizer.json") : dirOrFile;
    return new HfTokenizer(f);
  }

  /** Tokens of text and, for each, the char offset where it starts. */
  public record Encoded(int[] ids, int[] charStart) {}

  public Encoded encode(String text) {
    return encode(text, false);
  }

  /**
   * Tokens of text; with addSpecialTokens the tokenizer's post-processor adds what it defines
   * (Llama 3: BOS first; Qwen: nothing). An added token covers no text (a leading BOS starts at 0).
   */
  public Encoded encode(String text, boolean addSpecialTokens) {
    Encoding enc = tok.encode(text, addSpecialTokens, false);
    long[] ids = enc.getIds();
    CharSpan[] spans = enc.getCharTokenSpans();
    int[] out = new int[ids.length];
    int[] starts = new int[ids.length];
    int prev = 0;
    for (int i = 0; i < ids.length; i++) {
      out[i] = Math.toIntExact(ids[i]);
      // byte-fallback pieces of one character may carry no span: they start where the last one did
      starts[i] = spans != null && i < spans.length && spans[i] != null ? spans[i].getStart() : prev;
      prev = starts[i];
    }
    return new Encoded(out, starts);
  }

  public int[] ids(String text) {
    return encode(text).ids();
  }

  public String decode(int[] ids) {
    long[] l = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      l[i] = ids[i];
    }
    return tok.decode(l, false);
  }

  /** Text of ids with the tokenizer's special tokens (BOS, EOS, end-of-turn markers) left out. */
  public String decodeSkippingSpecial(int[] ids) {
    long[] l = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      l[i] = ids[i];
    }
    return tok.decode(l, true);
  }

  /** The chat_template of tokenizer_config.json beside tokenizer.json, or null when it has none. */
  public JinjaChatTemplate chatTemplate() {
    return chatTemplate;
  }

  public int vocabSize() {
    return vocabSize;
  }

  public String bosToken() {
    return bos;
  }

  public String eosToken() {
    return eos;
  }

  public int bosId() {
    return bosId;
  }

  public int eosId() {
    return eosId;
  }

  public Path file() {
    return file;
  }

  /** SHA-256 of tokenizer.json: prepared data records it so training can refuse a different tokenizer. */
  public String sha256() {
    return sha256;
  }

  /** Fails unless every token id fits the model's embedding table. */
  public void checkFits(int modelVocab, Path modelDir) {
    if (vocabSize > modelVocab) {
      throw new IllegalArgumentException(file + ": tokenizer has " + vocabSize
          + " tokens but the model's config.json in " + modelDir + " declares vocab_size " + modelVocab);
    }
  }

  @Override
  public void close() {
    tok.close();
  }
}
