package ai.lathe.prep;

import ai.lathe.model.io.LocalStore;
import ai.lathe.model.io.OutputGuard;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * {@link OutputGuard.Store} on any Hadoop file system: paths are qualified with
 * FileSystem.makeQualified; local paths ({@code file:}) go through {@link LocalStore} (symlinks
 * resolved, the lock created with CREATE_NEW), other schemes through create(overwrite=false),
 * which HDFS makes atomic.
 */
public final class HadoopStore implements OutputGuard.Store {
  private static final String LOCAL = "file:";
  private final Configuration conf;

  public HadoopStore(Configuration conf) {
    this.conf = conf;
  }

  /** Checks a spec (no lock): for a job's own run(), whoever calls it. */
  public static void check(OutputGuard.Spec spec, Configuration conf) throws IOException {
    OutputGuard.check(new HadoopStore(conf), spec);
  }

  /** Checks a spec and takes its output's lock. */
  public static OutputGuard.Lease acquire(OutputGuard.Spec spec, Configuration conf) throws IOException {
    return OutputGuard.acquire(new HadoopStore(conf), spec);
  }

  /**
   * A Hadoop configuration as the job's Spark session will have it (spark.hadoop.* system
   * properties copied), built without starting Spark, for checks before the session exists.
   */
  public static Configuration beforeSpark() {
    Configuration c = new Configuration();
    for (Map.Entry<Object, Object> e : System.getProperties().entrySet()) {
      String k = e.getKey().toString();
      if (k.startsWith("spark.hadoop.")) {
        c.set(k.substring("spark.hadoop.".length()), e.getValue().toString());
      }
    }
    return c;
  }

  @Override
  public String qualify(String path) throws IOException {
    Path p = new Path(path);
    FileSystem fs = p.getFileSystem(conf);
    Path q = fs.makeQualified(p);
    if ("file".equals(q.toUri().getScheme())) {
      return LOCAL + LocalStore.INSTANCE.qualify(q.toUri().getPath());
    }
    return q.toString();
  }

  private static String local(String qualified) {
    return qualified.startsWith(LOCAL) ? qualified.substring(LOCAL.length()) : null;
  }

  @Override
  public OutputGuard.Entry stat(String path) throws IOException {
    if (local(path) != null) {
      return LocalStore.INSTANCE.stat(local(path));
    }
    Path p = new Path(path);
    FileSystem fs = p.getFileSystem(conf);
    if (!fs.exists(p)) {
      return null;
    }
    FileStatus st = fs.getFileStatus(p);
    if (st.isDirectory()) {
      Set<String> names = new TreeSet<>();
      for (FileStatus c : fs.listStatus(p)) {
        names.add(c.getPath().getName());
      }
      return new OutputGuard.Entry(true, names, null);
    }
    try (InputStream in = fs.open(p)) {
      String head = new String(in.readNBytes(1 << 16), StandardCharsets.UTF_8);
      int nl = head.indexOf('\n');
      return new OutputGuard.Entry(false, Set.of(), nl >= 0 ? head.substring(0, nl) : head);
    }
  }

  @Override
  public boolean createNew(String path, String content) throws IOException {
    if (local(path) != null) {
      return LocalStore.INSTANCE.createNew(local(path), content);
    }
    Path p = new Path(path);
    try (OutputStream out = p.getFileSystem(conf).create(p, false)) {
      out.write(content.getBytes(StandardCharsets.UTF_8));
      return true;
    } catch (FileAlreadyExistsException e) {
      return false;
    } catch (IOException e) {
      if (p.getFileSystem(conf).exists(p)) {
        return false; // some file systems report an existing file with a plain IOException
      }
      throw e;
    }
  }

  @Override
  public String read(String path) throws IOException {
    if (local(path) != null) {
      return LocalStore.INSTANCE.read(local(path));
    }
    Path p = new Path(path);
    FileSystem fs = p.getFileSystem(conf);
    if (!fs.exists(p)) {
      return null;
    }
    try (InputStream in = fs.open(p)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  @Override
  public void delete(String path) throws IOException {
    if (local(path) != null) {
      LocalStore.INSTANCE.delete(local(path));
      return;
    }
    Path p = new Path(path);
    p.getFileSystem(conf).delete(p, true);
  }

  @Override
  public void rename(String from, String to) throws IOException {
    if (local(from) != null) {
      LocalStore.INSTANCE.rename(local(from), local(to));
      return;
    }
    Path f = new Path(from);
    if (!f.getFileSystem(conf).rename(f, new Path(to))) {
      throw new IOException("could not rename " + from + " to " + to);
    }
  }
}
