package ai.lathe.prep;

import ai.lathe.model.text.HfTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;

/** Per-JVM caches of what executors load once (tokenizers). */
public final class ExecutorCache {
  private static final ConcurrentHashMap<String, HfTokenizer> TOKENIZERS = new ConcurrentHashMap<>();

  private ExecutorCache() {}

  public static HfTokenizer tokenizer(String localPath) {
    return TOKENIZERS.computeIfAbsent(localPath, p -> {
      try {
        return HfTokenizer.open(Path.of(p));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }
}
