#!/usr/bin/env python3
"""An independent PyTorch implementation of transformers' Llama forward pass (and PEFT's LoRA),
used to check Lathe's `score` command. Also the other families Lathe runs, as transformers
computes them: Llama 3 (rope_scaling llama3, tied head, explicit head_dim), Qwen2 (q/k/v
biases), Qwen3 (RMSNorm per head on q and k before RoPE) and Mistral (sliding window).

  python3 llama_ref.py make OUT_DIR      writes a tiny checkpoint (GQA, untied head,
                                          rope_theta 500000, BF16), a PEFT adapter, rows.jsonl
                                          and expected.jsonl (log-probs with and without adapter)
  python3 llama_ref.py make-dora OUT_DIR  adds a PEFT DoRA adapter (use_dora, lora_magnitude_vector,
                                          rank_pattern) for OUT_DIR/model and expected-dora.jsonl
  python3 llama_ref.py make-family FAMILY OUT_DIR
                                          FAMILY in llama3, qwen2, qwen3, mistral: a tiny
                                          BF16 checkpoint, a LoRA adapter, rows.jsonl, expected.jsonl
  python3 llama_ref.py score MODEL_DIR ROWS.jsonl [ADAPTER_DIR]
                                          prints one log-prob per row
  python3 llama_ref.py greedy GOLDEN_DIR N ADAPTER_NAME...
                                          writes GOLDEN_DIR/expected-greedy.jsonl: for each row's
                                          prompt (input_ids before completion_start) the N greedy
                                          tokens (transformers' argmax over the last position's
                                          logits, the whole prefix recomputed each step), without
                                          adapter ("base") and with each GOLDEN_DIR/ADAPTER_NAME,
                                          plus the smallest top-1/top-2 logit gap seen

Needs only torch (Debian: python3-torch). Computes in float64.
"""
import json
import math
import os
import struct
import sys

import torch

DT = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=DT[e["dtype"]]).reshape(e["shape"])
        out[name] = t
    return out


def write_safetensors(path, tensors, dtype):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.to(DT[dtype]).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if dtype != "F32" else t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_inv_freq(c, hd):
    """transformers' inverse frequencies in float32, with rope_type llama3 scaling when configured."""
    params = c.get("rope_parameters") or c.get("rope_scaling") or {}
    theta = params.get("rope_theta", c.get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind == "default":
        return inv
    assert kind == "llama3", kind
    factor, lo, hi = params["factor"], params["low_freq_factor"], params["high_freq_factor"]
    old = params["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    low_wavelen, high_wavelen = old / lo, old / hi
    scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, blended, scaled)


class Llama:
    def __init__(self, model_dir, adapter_dir=None):
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.cfg = cfg
        w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.w = {k: v.to(torch.float64) for k, v in w.items()}
        self.lora = {}
        if adapter_dir:
            acfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
            a = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
            for k, v in a.items():
                if ".lora_A." in k:
                    mod = k[len("base_model.model."):k.index(".lora_A.")]
                    r = v.shape[0]
                    scale = acfg["lora_alpha"] / (math.sqrt(r) if acfg.get("use_rslora") else r)
                    if acfg.get("rank_pattern"):
                        for pat, pr in acfg["rank_pattern"].items():
                            if mod.endswith(pat):
                                scale = acfg["lora_alpha"] / (math.sqrt(pr) if acfg.get("use_rslora") else pr)
                    B = a[k.replace(".lora_A.", ".lora_B.")]
                    mag = a.get(k.replace(".lora_A.weight", ".lora_magnitude_vector"))
                    self.lora[mod] = (v.to(torch.float64), B.to(torch.float64), scale,
                                      None if mag is None or not acfg.get("use_dora") else mag.to(torch.float64))

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:  # Qwen2's q/k/v: the base layer's bias, LoRA/DoRA add on top
            y = y + self.w[name + ".bias"]
        if name in self.lora:
            A, B, s, mag = self.lora[name]
            if mag is None:
                y = y + s * (x @ A.T) @ B.T
            else:
                # PEFT's DoRA (eval, no dropout): the LoRA delta through an identity, the row norm of
                # W + s*delta (detached in training), then (m/norm - 1)*base + (m/norm)*s*lora(x)
                W = self.w[name + ".weight"]
                eye = torch.eye(A.shape[1], dtype=torch.float64)
                delta = ((eye @ A.T) @ B.T).T
                norm = torch.linalg.norm(W + s * delta, dim=1)
                scale = (mag / norm).view(1, -1)
                y = y + (scale - 1) * (x @ W.T) + scale * ((x @ A.T) @ B.T) * s
        return y

    def logits(self, ids):
        c = self.cfg
        H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["hidden_size"]
        hd = c.get("head_dim") or D // H
        eps = c["rms_norm_eps"]
        T = len(ids)
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)]
        inv_freq = rope_inv_freq(c, hd)
        freqs = torch.outer(torch.arange(T).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(torch.float64), emb.sin().to(torch.float64)
        mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
        window = c.get("sliding_window") if c["model_type"] == "mistral" else None
        if window:  # key j visible to query i only when i - j < window
            i = torch.arange(T).view(T, 1)
            j = torch.arange(T).view(1, T)
            mask = mask.masked_fill(i - j >= window, float("-inf"))
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = rms_norm(x, self.w[p + "input_layernorm.weight"], eps)
            q = self.linear(h, p + "self_attn.q_proj").view(T, H, hd)
            k = self.linear(h, p + "self_attn.k_proj").view(T, KV, hd)
            if c["model_type"] == "qwen3":  # per-head RMSNorm over head_dim, before RoPE
                q = rms_norm(q, self.w[p + "self_attn.q_norm.weight"], eps)
                k = rms_norm(k, self.w[p + "self_attn.k_norm.weight"], eps)
            q, k = q.transpose(0, 1), k.transpose(0, 1)
            v = self.linear(h, p + "self_attn.v_proj").view(T, KV, hd).transpose(0, 1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(H // KV, dim=0)
            v = v.repeat_interleave(H // KV, dim=0)
            att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
            o = (att @ v).transpose(0, 1).reshape(T, H * hd)
            x = x + self.linear(o, p + "self_attn.o_proj")
            h = rms_norm(x, self.w[p + "post_attention_layernorm.weight"], eps)
            g = self.linear(h, p + "mlp.gate_proj")
            u = self.linear(h, p + "mlp.up_proj")
            x = x + self.linear(torch.nn.functional.silu(g) * u, p + "mlp.down_proj")
        x = rms_norm(x, self.w["model.norm.weight"], eps)
        head = self.w["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else self.w["lm_head.weight"]
        return x @ head.T

    def logprob(self, ids, start):
        lp = torch.log_softmax(self.logits(ids), dim=-1)
        return sum(lp[t - 1, ids[t]].item() for t in range(start, len(ids)))


def make(out):
    g = torch.Generator().manual_seed(1234)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 320, "hidden_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 96,
           "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False,
           "max_position_embeddings": 128, "hidden_act": "silu", "torch_dtype": "bfloat16"}
    D, F, V = 64, 96, 320
    kvd = 2 * 16
    shapes = {"q_proj": (D, D), "k_proj": (kvd, D), "v_proj": (kvd, D), "o_proj": (D, D),
              "gate_proj": (F, D), "up_proj": (F, D), "down_proj": (D, F)}
    t = {"model.embed_tokens.weight": torch.randn(V, D, generator=g) * 0.5}
    for l in range(2):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(D, generator=g)
        t[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(D, generator=g)
        for m, s in shapes.items():
            blk = "mlp" if m in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            t[f"{p}{blk}.{m}.weight"] = torch.randn(*s, generator=g) * 0.15
    t["model.norm.weight"] = 1 + 0.1 * torch.randn(D, generator=g)
    t["lm_head.weight"] = torch.randn(V, D, generator=g) * 0.3
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    json.dump(cfg, open(os.path.join(model_dir, "config.json"), "w"), indent=1)
    write_safetensors(os.path.join(model_dir, "model.safetensors"), t, "BF16")
    # a PEFT adapter with PEFT's key names, B non-zero so it changes the output
    adapter_dir = os.path.join(out, "adapter")
    os.makedirs(adapter_dir, exist_ok=True)
    targets = ["q_proj", "v_proj", "o_proj", "down_proj"]
    acfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
            "target_modules": targets, "use_rslora": False, "use_dora": False, "bias": "none",
            "fan_in_fan_out": False, "base_model_name_or_path": "tiny", "rank_pattern": {}, "alpha_pattern": {}}
    json.dump(acfg, open(os.path.join(adapter_dir, "adapter_config.json"), "w"), indent=1)
    at = {}
    for l in range(2):
        for m in targets:
            blk = "mlp" if m == "down_proj" else "self_attn"
            out_f, in_f = shapes[m]
            key = f"base_model.model.model.layers.{l}.{blk}.{m}"
            at[key + ".lora_A.weight"] = torch.randn(4, in_f, generator=g) * 0.2
            at[key + ".lora_B.weight"] = torch.randn(out_f, 4, generator=g) * 0.2
    write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"), at, "F32")
    rows = []
    for i, n in enumerate([5, 17, 33, 64, 100]):
        ids = torch.randint(3, V, (n,), generator=g).tolist()
        ids[0] = 1
        rows.append({"id": i, "input_ids": ids, "completion_start": max(1, n // 3)})
    with open(os.path.join(out, "rows.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    base, adapted = Llama(model_dir), Llama(model_dir, adapter_dir)
    with open(os.path.join(out, "expected.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "logprob": base.logprob(r["input_ids"], r["completion_start"]),
                                "logprob_adapter": adapted.logprob(r["input_ids"], r["completion_start"])}) + "\n")


def make_dora(out):
    g = torch.Generator().manual_seed(4321)
    model_dir = os.path.join(out, "model")
    w = {k: v.to(torch.float64) for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    adapter_dir = os.path.join(out, "adapter-dora")
    os.makedirs(adapter_dir, exist_ok=True)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    ranks = {"layers.0.self_attn.q_proj": 2, "down_proj": 6}
    acfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
            "target_modules": targets, "use_rslora": False, "use_dora": True, "bias": "none",
            "fan_in_fan_out": False, "base_model_name_or_path": "tiny", "rank_pattern": ranks, "alpha_pattern": {}}
    json.dump(acfg, open(os.path.join(adapter_dir, "adapter_config.json"), "w"), indent=1)
    at = {}
    for l in range(2):
        for m in targets:
            blk = "mlp" if m in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            key = f"model.layers.{l}.{blk}.{m}"
            W = w[key + ".weight"]
            r = 4
            for pat, pr in ranks.items():
                if key.endswith(pat):
                    r = pr
            A = torch.randn(r, W.shape[1], generator=g, dtype=torch.float64) * 0.2
            B = torch.randn(W.shape[0], r, generator=g, dtype=torch.float64) * 0.2
            s = 8 / r
            # magnitude: the row norms PEFT starts from, then moved as training would move it
            mag = torch.linalg.norm(W + s * (B @ A), dim=1) * (1 + 0.2 * torch.randn(W.shape[0], generator=g,
                                                                                        dtype=torch.float64))
            at["base_model.model." + key + ".lora_A.weight"] = A
            at["base_model.model." + key + ".lora_B.weight"] = B
            at["base_model.model." + key + ".lora_magnitude_vector"] = mag
    write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"), at, "F32")
    dora = Llama(model_dir, adapter_dir)
    with open(os.path.join(out, "expected-dora.jsonl"), "w") as f:
        for line in open(os.path.join(out, "rows.jsonl")):
            r = json.loads(line)
            f.write(json.dumps({"id": r["id"], "logprob_dora": dora.logprob(r["input_ids"], r["completion_start"])})
                    + "\n")


FAMILIES = {
    # Llama 3.x: llama3 rope scaling, head_dim 24 != 64/4, tied head (no lm_head in the file)
    "llama3": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "head_dim": 24,
               "rope_theta": 500000.0, "tie_word_embeddings": True, "attention_bias": False,
               "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
    # Qwen2: q/k/v biases; the sliding window is off (use_sliding_window false)
    "qwen2": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "rope_theta": 1000000.0,
              "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": 32,
              "max_window_layers": 2},
    # Qwen3: q/k head norms, head_dim 24, tied head, rope_theta inside rope_parameters (transformers 5)
    "qwen3": {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": 24,
              "attention_bias": False, "tie_word_embeddings": True, "use_sliding_window": False,
              "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}},
    # Mistral: a sliding window of 8, shorter than most rows
    "mistral": {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "rope_theta": 10000.0,
                "tie_word_embeddings": False, "sliding_window": 8},
}


def make_family(family, out):
    g = torch.Generator().manual_seed(sum(map(ord, family)))
    D, F, V, H, KV, L = 64, 96, 320, 4, 2, 2
    cfg = {"vocab_size": V, "hidden_size": D, "num_hidden_layers": L, "num_attention_heads": H,
           "num_key_value_heads": KV, "intermediate_size": F, "rms_norm_eps": 1e-6,
           "max_position_embeddings": 128, "hidden_act": "silu", "torch_dtype": "bfloat16",
           "bos_token_id": 1, "eos_token_id": 2}
    cfg.update(FAMILIES[family])
    hd = cfg.get("head_dim") or D // H
    shapes = {"q_proj": (H * hd, D), "k_proj": (KV * hd, D), "v_proj": (KV * hd, D), "o_proj": (D, H * hd),
              "gate_proj": (F, D), "up_proj": (F, D), "down_proj": (D, F)}
    t = {"model.embed_tokens.weight": torch.randn(V, D, generator=g) * 0.5}
    for l in range(L):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(D, generator=g)
        t[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(D, generator=g)
        for m, s in shapes.items():
            blk = "mlp" if m in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            t[f"{p}{blk}.{m}.weight"] = torch.randn(*s, generator=g) * 0.15
            if family == "qwen2" and m in ("q_proj", "k_proj", "v_proj"):
                t[f"{p}{blk}.{m}.bias"] = torch.randn(s[0], generator=g) * 0.5
        if family == "qwen3":
            t[p + "self_attn.q_norm.weight"] = 1 + 0.3 * torch.randn(hd, generator=g)
            t[p + "self_attn.k_norm.weight"] = 1 + 0.3 * torch.randn(hd, generator=g)
    t["model.norm.weight"] = 1 + 0.1 * torch.randn(D, generator=g)
    if not cfg["tie_word_embeddings"]:
        t["lm_head.weight"] = torch.randn(V, D, generator=g) * 0.3
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    json.dump(cfg, open(os.path.join(model_dir, "config.json"), "w"), indent=1)
    write_safetensors(os.path.join(model_dir, "model.safetensors"), t, "BF16")
    adapter_dir = os.path.join(out, "adapter")
    os.makedirs(adapter_dir, exist_ok=True)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"]
    acfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
            "target_modules": targets, "use_rslora": False, "use_dora": False, "bias": "none",
            "fan_in_fan_out": False, "base_model_name_or_path": family, "rank_pattern": {}, "alpha_pattern": {}}
    json.dump(acfg, open(os.path.join(adapter_dir, "adapter_config.json"), "w"), indent=1)
    at = {}
    for l in range(L):
        for m in targets:
            blk = "mlp" if m == "down_proj" else "self_attn"
            out_f, in_f = shapes[m]
            key = f"base_model.model.model.layers.{l}.{blk}.{m}"
            at[key + ".lora_A.weight"] = torch.randn(4, in_f, generator=g) * 0.2
            at[key + ".lora_B.weight"] = torch.randn(out_f, 4, generator=g) * 0.2
    write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"), at, "F32")
    rows = []
    for i, n in enumerate([5, 17, 40, 100]):
        ids = torch.randint(3, V, (n,), generator=g).tolist()
        ids[0] = 1
        rows.append({"id": i, "input_ids": ids, "completion_start": max(1, n // 3)})
    with open(os.path.join(out, "rows.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    base, adapted = Llama(model_dir), Llama(model_dir, adapter_dir)
    with open(os.path.join(out, "expected.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "logprob": base.logprob(r["input_ids"], r["completion_start"]),
                                "logprob_adapter": adapted.logprob(r["input_ids"], r["completion_start"])}) + "\n")


def greedy(model, prompt, n):
    """n tokens by argmax (first maximum, as torch.argmax), recomputing the whole prefix each step;
    also the smallest gap between the best and second-best logit (how far from a tie)."""
    ids, out, gap = list(prompt), [], float("inf")
    for _ in range(n):
        z = model.logits(ids)[-1]
        top = torch.topk(z, 2).values
        gap = min(gap, (top[0] - top[1]).item())
        t = int(torch.argmax(z).item())
        out.append(t)
        ids.append(t)
    return out, gap


def make_greedy(golden, n, adapters):
    model_dir = os.path.join(golden, "model")
    models = {"base": Llama(model_dir)}
    for a in adapters:
        models[a] = Llama(model_dir, os.path.join(golden, a))
    with open(os.path.join(golden, "expected-greedy.jsonl"), "w") as f:
        for line in open(os.path.join(golden, "rows.jsonl")):
            r = json.loads(line)
            prompt = r["input_ids"][:r["completion_start"]]
            for name, m in models.items():
                toks, gap = greedy(m, prompt, n)
                f.write(json.dumps({"id": r["id"], "adapter": name, "prompt": prompt, "tokens": toks,
                                    "min_gap": gap}) + "\n")


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "make-family":
        make_family(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "make-dora":
        make_dora(sys.argv[2])
    elif sys.argv[1] == "greedy":
        make_greedy(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    elif sys.argv[1] == "score":
        m = Llama(sys.argv[2], sys.argv[4] if len(sys.argv) > 4 else None)
        for line in open(sys.argv[3]):
            r = json.loads(line)
            print(m.logprob(r["input_ids"], r["completion_start"]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
