package ai.lathe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.lathe.model.io.HfLayout;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** The seven projections against transformers' LlamaAttention / LlamaMLP definitions, written out. */
class ProjectionTest {

  /** dim 16, 4 heads of 6 (qd 24), 2 kv heads (kvd 12), ffn 40: every width distinct but dim's pairs. */
  static final LlamaConfig C = LlamaConfig.family("qwen3", 37, 16, 2, 4, 2, 40, 6, 1e6, false, 64, 0);

  @Test
  void namesOrderBlocksAndBiasesAsInCheckpoints() {
    assertEquals(List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        Projection.NAMES);
    assertEquals(Projection.NAMES, HfLayout.MODULES);
    assertEquals(List.of("q_proj", "k_proj", "v_proj"), HfLayout.BIASED);
    assertEquals("model.layers.3.self_attn.o_proj", HfLayout.modulePath(3, "o_proj"));
    assertEquals("model.layers.3.mlp.gate_proj.weight", HfLayout.weight(3, "gate_proj"));
    for (Projection p : Projection.ALL) {
      assertSame(p, Projection.of(p.hfName()));
      assertEquals(p.ordinal() >= 4, p.inMlp(), p + " block");
      assertEquals(p.ordinal() < 3, p.biased(), p + " bias");
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Projection.of("qproj"));
    assertTrue(e.getMessage().contains("qproj"), e.getMessage());
  }

  /** nn.Linear(in, out) stores [out, in]: q (dim → heads·hd), k/v (dim → kv·hd), o back, gate/up/down via ffn. */
  @Test
  void shapesAreTransformersLinearWeights() {
    int[][] want = {{24, 16}, {12, 16}, {12, 16}, {16, 24}, {40, 16}, {40, 16}, {16, 40}};
    for (Projection p : Projection.ALL) {
      assertArrayEquals(want[p.ordinal()], p.shape(C), p.hfName());
      assertArrayEquals(want[p.ordinal()], C.moduleShape(p.hfName()), p.hfName());
    }
  }

  /** A layer's module(p) and bias(p) hand back the record component the projection names. */
  @Test
  void layerAccessorsFollowTheEnum() {
    LlamaConfig q2 = LlamaConfig.family("qwen2", 37, 16, 1, 4, 2, 40, 0, 1e6, false, 64, 0);
    LlamaWeights.Layer l = RandomLlama.create(q2, 1, 0.1, 0.0, DataType.FLOAT).layers[0];
    Object[] mods = {l.q(), l.k(), l.v(), l.o(), l.gate(), l.up(), l.down()};
    Object[] biases = {l.qBias(), l.kBias(), l.vBias(), null, null, null, null};
    for (Projection p : Projection.ALL) {
      assertSame(mods[p.ordinal()], l.module(p), p.hfName());
      assertSame(mods[p.ordinal()], l.module(p.hfName()), p.hfName());
      assertSame(biases[p.ordinal()], l.bias(p), p.hfName());
    }
  }
}
