package ai.lathe.prep;

import ai.lathe.model.io.AtomicCommit;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/** File operations on any Hadoop file system: listing inputs, small files, atomic folder commits. */
public final class HadoopIo {
  private HadoopIo() {}

  public static FileSystem fs(String path, Configuration conf) throws IOException {
    return new Path(path).getFileSystem(conf);
  }

  /** Input files of a path or glob: plain files as given, folders expanded (hidden and _ files skipped). */
  public static List<FileStatus> listInputs(String path, Configuration conf) throws IOException {
    Path p = new Path(path);
    FileSystem fs = p.getFileSystem(conf);
    FileStatus[] matches = fs.globStatus(p);
    if (matches == null || matches.length == 0) {
      throw new IOException(path + ": input not found");
    }
    List<FileStatus> out = new ArrayList<>();
    for (FileStatus m : matches) {
      if (m.isDirectory()) {
        for (FileStatus f : fs.listStatus(m.getPath())) {
          String n = f.getPath().getName();
          if (f.isFile() && !n.startsWith(".") && !n.startsWith("_")) {
            out.add(f);
          }
        }
      } else {
        out.add(m);
      }
    }
    out.sort((a, b) -> a.getPath().toString().compareTo(b.getPath().toString()));
    if (out.isEmpty()) {
      throw new IOException(path + ": no input files");
    }
    return out;
  }

  public static String readString(String path, Configuration conf) throws IOException {
    Path p = new Path(path);
    try (InputStream in = p.getFileSystem(conf).open(p)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  public static void writeString(String path, String content, Configuration conf) throws IOException {
    Path p = new Path(path);
    try (OutputStream out = p.getFileSystem(conf).create(p, true)) {
      out.write(content.getBytes(StandardCharsets.UTF_8));
    }
  }

  public static boolean exists(String path, Configuration conf) throws IOException {
    Path p = new Path(path);
    return p.getFileSystem(conf).exists(p);
  }

  /** A fresh hidden sibling of target for writing; commit() renames it into place. */
  public static String tempSibling(String target) {
    Path t = new Path(target);
    return new Path(t.getParent(), AtomicCommit.tempName(t.getName(), AtomicCommit.tag())).toString();
  }

  /** Renames tmp onto target ({@link AtomicCommit}: the old target is kept until the new one is in place). */
  public static void commit(String tmp, String target, Configuration conf) throws IOException {
    Path t = new Path(target);
    AtomicCommit.commit(new HadoopFs(t.getFileSystem(conf)), new Path(tmp), t);
  }

  /** A Hadoop file system for {@link AtomicCommit}. */
  private record HadoopFs(FileSystem fs) implements AtomicCommit.Fs<Path> {
    @Override
    public boolean exists(Path p) throws IOException {
      return fs.exists(p);
    }

    @Override
    public void rename(Path from, Path to) throws IOException {
      if (!fs.rename(from, to)) {
        throw new IOException("could not rename " + from + " to " + to);
      }
    }

    @Override
    public void deleteTree(Path p) throws IOException {
      fs.delete(p, true);
    }

    @Override
    public Path sibling(Path p, String name) {
      return new Path(p.getParent(), name);
    }

    @Override
    public String name(Path p) {
      return p.getName();
    }
  }

  public static void deleteQuietly(String path, Configuration conf) {
    try {
      Path p = new Path(path);
      p.getFileSystem(conf).delete(p, true);
    } catch (IOException e) {
      // best effort: a leftover hidden temp folder is harmless
    }
  }
}
