package ai.lathe.model.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/** Reads JSON-lines files strictly: invalid UTF-8 or JSON is an error naming the file and line. */
public final class JsonlData {
  private JsonlData() {}

  /** One parsed line with its 1-based line number. */
  public record Row(int line, JsonNode json) {}

  public static void forEach(Path file, Consumer<Row> body) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IOException(file + ": input file not found");
    }
    ObjectMapper om = new ObjectMapper();
    var dec = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    try (BufferedReader r = new BufferedReader(new java.io.InputStreamReader(Files.newInputStream(file), dec))) {
      String s;
      int line = 0;
      while (true) {
        try {
          s = r.readLine();
        } catch (CharacterCodingException e) {
          throw new IOException(file + ":" + (line + 1) + ": invalid UTF-8");
        }
        if (s == null) {
          break;
        }
        line++;
        if (s.isBlank()) {
          continue;
        }
        JsonNode n;
        try {
          n = om.readTree(s);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
          throw new IOException(file + ":" + line + ": not valid JSON: " + e.getOriginalMessage());
        }
        if (!n.isObject()) {
          throw new IOException(file + ":" + line + ": each line must be a JSON object");
        }
        body.accept(new Row(line, n));
      }
    }
  }
}
