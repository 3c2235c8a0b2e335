package ai.lathe.model.gen;

import ai.lathe.model.LlamaModel;
import ai.lathe.model.nn.Buf;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * Batched autoregressive generation with a KV cache: prefill every prompt (in chunks of rows
 * across prompts), then one token per unfinished sequence per step. Each prompt draws from its
 * own random stream (seed, prompt index), so a prompt's sample does not depend on its batch.
 */
public final class Generator {
  /** Rows of prompt tokens sent through the model at once during prefill (a chunk may end mid-prompt). */
  static final int PREFILL_ROWS = 256;

  int prefillRows = PREFILL_ROWS;

  private final LlamaModel model;
  /** Kept between calls (its buffers are costly to allocate) while the model's adapters stay the same. */
  private Decoder decoder;

  /** Uses the model's weights and its adapters as currently enabled (LlamaModel.setAdaptersEnabled). */
  public Generator(LlamaModel model) {
    this.model = model;
  }

  /** Batched; the same seed gives the same outputs. Stop strings need the overload with a decoder. */
  public List<Generation> generate(List<int[]> prompts, Sampling s, long seed) {
    return generate(prompts, s, seed, null);
  }

  /** As above; decode turns new tokens into text for the stop strings (null when there are none). */
  public List<Generation> generate(List<int[]> prompts, Sampling s, long seed, Function<int[], String> decode) {
    return generate(prompts, s, seed, decode, null);
  }

  /** Sees the full-vocabulary logits each new token is drawn from (for tests). */
  interface Probe {
    void logits(int prompt, int step, double[] z);
  }

  List<Generation> generate(List<int[]> prompts, Sampling s, long seed, Function<int[], String> decode, Probe probe) {
    long[] seeds = new long[prompts.size()];
    for (int i = 0; i < seeds.length; i++) {
      seeds[i] = promptSeed(seed, i);
    }
    return generate(prompts, s, seeds, decode, probe);
  }

  /** The random stream of prompt i under seed: what generate(prompts, s, seed) gives prompt i. */
  public static long promptSeed(long seed, long i) {
    return seed ^ (0x9E3779B97F4A7C15L * (i + 1));
  }

  /** As above with one seed per prompt (so a prompt's sample does not depend on how prompts are batched). */
  public List<Generation> generate(List<int[]> prompts, Sampling s, long[] seeds, Function<int[], String> decode) {
    return generate(prompts, s, seeds, decode, null);
  }

  List<Generation> generate(List<int[]> prompts, Sampling s, long[] seeds, Function<int[], String> decode,
      Probe probe) {
    if (seeds.length != prompts.size()) {
      throw new IllegalArgumentException("need one seed per prompt: " + prompts.size() + ", got " + seeds.length);
    }
    if (!s.stopStrings().isEmpty() && decode == null) {
      throw new IllegalArgumentException("stop strings need a decoder (generate(prompts, sampling, seed, decode))");
    }
    Decoder dec = decoder();
    int maxPos = dec.maxPositions();
    int vocab = model.config().vocabSize();
    int b = prompts.size();
    Seq[] seqs = new Seq[b];
    for (int i = 0; i < b; i++) {
      int[] p = prompts.get(i);
      checkPrompt(i, p, vocab, maxPos);
      // the last new token is never fed back, so the cache holds prompt + maxNew − 1 positions at most
      int cap = (int) Math.min((long) p.length + s.maxNewTokens() - 1, maxPos);
      seqs[i] = new Seq(p, new KvCache(model.config(), Math.max(cap, p.length), model.dtype()),
          new SplittableRandom(seeds[i]));
    }
    for (int i = 0; i < b; i++) {
      seqs[i].index = i;
    }
    prefill(dec, seqs, s, decode, maxPos, probe, prefillRows);
    while (true) {
      List<Seq> live = new ArrayList<>();
      for (Seq q : seqs) {
        if (q.finish == null) {
          live.add(q);
        }
      }
      if (live.isEmpty()) {
        break;
      }
      int n = live.size();
      int[] tok = new int[n];
      int[] pos = new int[n];
      KvCache[] cache = new KvCache[n];
      int[] head = new int[n];
      for (int r = 0; r < n; r++) {
        Seq q = live.get(r);
        tok[r] = q.out.get(q.out.size() - 1);
        pos[r] = q.cache.length;
        cache[r] = q.cache;
        head[r] = r;
      }
      Buf z = dec.logits(dec.hidden(tok, pos, cache, head));
      for (int r = 0; r < n; r++) {
        live.get(r).cache.length++;
        live.get(r).next(z, r, s, decode, maxPos, probe);
      }
    }
    List<Generation> out = new ArrayList<>(b);
    for (Seq q : seqs) {
      out.add(new Generation(q.out.stream().mapToInt(Integer::intValue).toArray(), q.finish));
    }
    return out;
  }

  private Decoder decoder() {
    if (decoder == null || !decoder.matches(model)) {
      decoder = new Decoder(model);
    }
    return decoder;
  }

  private static void checkPrompt(int i, int[] p, int vocab, int maxPos) {
    if (p == null || p.length == 0) {
      throw new IllegalArgumentException("prompt " + i + " is empty: generation needs at least one token");
    }
    if (p.length > maxPos) {
      throw new IllegalArgumentException("prompt " + i + " has " + p.length
          + " tokens, more than the model's max_position_embeddings " + maxPos);
    }
    for (int t = 0; t < p.length; t++) {
      if (p[t] < 0 || p[t] >= vocab) {
        throw new IllegalArgumentException("prompt " + i + " token " + t + " = " + p[t] + " is outside the vocabulary of "
            + vocab);
      }
    }
  }

  /** Runs every prompt's tokens through the model in chunks of rows, sampling each first new token. */
  private static void prefill(Decoder dec, Seq[] seqs, Sampling s, Function<int[], String> decode, int maxPos,
      Probe probe, int chunkRows) {
    int total = 0;
    for (Seq q : seqs) {
      total += q.prompt.length;
    }
    int[] rowSeq = new int[total];
    int[] rowPos = new int[total];
    int k = 0;
    for (int i = 0; i < seqs.length; i++) {
      for (int t = 0; t < seqs[i].prompt.length; t++) {
        rowSeq[k] = i;
        rowPos[k++] = t;
      }
    }
    for (int lo = 0; lo < total; lo += chunkRows) {
      int n = Math.min(chunkRows, total - lo);
      int[] tok = new int[n];
      int[] pos = new int[n];
      KvCache[] cache = new KvCache[n];
      List<Integer> heads = new ArrayList<>();
      for (int r = 0; r < n; r++) {
        Seq q = seqs[rowSeq[lo + r]];
        pos[r] = rowPos[lo + r];
        tok[r] = q.prompt[pos[r]];
        cache[r] = q.cache;
        if (pos[r] == q.prompt.length - 1) {
          heads.add(r);
        }
      }
      int[] head = heads.stream().mapToInt(Integer::intValue).toArray();
      Buf hidden = dec.hidden(tok, pos, cache, head);
      for (int r = 0; r < n; r++) {
        cache[r].length = pos[r] + 1;
      }
      if (hidden == null) {
        continue; // no prompt ends in this chunk
      }
      Buf z = dec.logits(hidden);
      for (int m = 0; m < head.length; m++) {
        Seq q = seqs[rowSeq[lo + head[m]]];
        q.next(z, m, s, decode, maxPos, probe);
      }
    }
  }

  /** One sequence's state: its prompt, cache, random stream and the tokens generated so far. */
  private static final class Seq {
    final int[] prompt;
    final KvCache cache;
    final SplittableRandom rng;
    final List<Integer> out = new ArrayList<>();
    String finish;
    int index;

    Seq(int[] prompt, KvCache cache, SplittableRandom rng) {
      this.prompt = prompt;
      this.cache = cache;
      this.rng = rng;
    }

    /** Draws the next token from row r of logits z. */
    void next(Buf z, int r, Sampling s, Function<int[], String> decode, int maxPos, Probe probe) {
      int vocab = (int) z.arr.size(1);
      if (probe != null) {
        double[] row = new double[vocab];
        for (int i = 0; i < vocab; i++) {
          row[i] = z.get(r * vocab + i);
        }
        probe.logits(index, out.size(), row);
      }
      accept(Sampler.pick(z, r * vocab, vocab, s, rng), s, decode, maxPos);
    }

    /** Appends a new token and decides whether the sequence ends here. */
    void accept(int id, Sampling s, Function<int[], String> decode, int maxPos) {
      out.add(id);
      if (s.stopsAt(id) || hitsStopString(s, decode)) {
        finish = Generation.STOP;
      } else if (out.size() >= s.maxNewTokens() || prompt.length + out.size() > maxPos) {
        // the budget is spent, or feeding this token back would need position prompt + out − 1 ≥ max_position_embeddings
        finish = Generation.LENGTH;
      }
    }

    private boolean hitsStopString(Sampling s, Function<int[], String> decode) {
      if (s.stopStrings().isEmpty()) {
        return false;
      }
      String text = decode.apply(out.stream().mapToInt(Integer::intValue).toArray());
      for (String stop : s.stopStrings()) {
        if (text.contains(stop)) {
          return true;
        }
      }
      return false;
    }
  }
}
