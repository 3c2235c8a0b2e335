package ai.lathe.jobs;

import ai.lathe.model.nn.Par;

/**
 * The JVM-wide state a resumed run need not share with the run it resumes: a JVM that ran sft-local
 * first (which sets the engine's row-loop threads, Par, to the core count; the pipeline's demo base
 * stage now restores them, other callers of sft-local in one JVM may not); a rerun after a kill is a
 * fresh JVM (Par at one thread) whose task threads hold no cached engine.
 */
final class JvmState {
  private JvmState() {}

  /** The pipeline's JVM after sft-local: row loops over 2 threads; no cached engines yet. */
  static void afterSftLocal() {
    ThreadCache.releaseAll();
    Par.setThreads(2);
  }

  /** A fresh JVM, as a rerun's: Par at its default (one thread), no task thread holds an engine. */
  static void fresh() {
    ThreadCache.releaseAll();
    Par.setThreads(1);
  }
}
