#!/usr/bin/env python3
"""The speed peer for `lathe bench`: the same SFT step in PyTorch (a transformers-convention
Llama with PEFT-style LoRA, frozen base, autograd), on CPU.

  /usr/bin/python3 torch_lora_bench.py [--dim 512 --layers 4 --heads 8 --kv-heads 8 --ffn 1376
                               --vocab 32000 --seq 256 --batch 4 --rank 16 --threads 2 --steps 5]
                               [--targets q_proj,k_proj,v_proj,o_proj | all-linear] [--tied]
                               [--autocast bf16] [--rope-theta 10000]
GQA: --kv-heads below --heads repeats each kv head over its group (transformers' repeat_kv).
--tied: the LM head is the embedding matrix (tie_word_embeddings). --targets all-linear: LoRA on
q, k, v, o, gate, up, down. --autocast bf16: the step under torch.autocast("cpu", bfloat16)
(weights stay fp32, matmuls in bf16). Prints tokens/s and GFLOP/s (same FLOP count as lathe
bench) and a JSON line.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraLinear(nn.Module):
    def __init__(self, fin, fout, r, alpha):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fout, fin) * 0.02, requires_grad=False)
        self.r = r
        if r:
            self.lora_A = nn.Parameter(torch.empty(r, fin))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.lora_B = nn.Parameter(torch.zeros(fout, r))
            self.scale = alpha / r

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.r:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale
        return y


def rms(x, w, eps=1e-5):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self, a, targets):
        super().__init__()
        d, hd = a.dim, a.dim // a.heads
        kvd = a.kv_heads * hd
        r = lambda m: a.rank if m in targets else 0
        self.q = LoraLinear(d, d, r("q_proj"), 2 * a.rank)
        self.k = LoraLinear(d, kvd, r("k_proj"), 2 * a.rank)
        self.v = LoraLinear(d, kvd, r("v_proj"), 2 * a.rank)
        self.o = LoraLinear(d, d, r("o_proj"), 2 * a.rank)
        self.gate = LoraLinear(d, a.ffn, r("gate_proj"), 2 * a.rank)
        self.up = LoraLinear(d, a.ffn, r("up_proj"), 2 * a.rank)
        self.down = LoraLinear(a.ffn, d, r("down_proj"), 2 * a.rank)
        self.n1 = nn.Parameter(torch.ones(d), requires_grad=False)
        self.n2 = nn.Parameter(torch.ones(d), requires_grad=False)
        self.h, self.kvh, self.hd = a.heads, a.kv_heads, hd

    def forward(self, x, cos, sin):
        b, t, d = x.shape
        h = rms(x, self.n1)
        q = self.q(h).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.kvh, self.hd).transpose(1, 2)
        v = self.v(h).view(b, t, self.kvh, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kvh != self.h:
            k = k.repeat_interleave(self.h // self.kvh, dim=1)
            v = v.repeat_interleave(self.h // self.kvh, dim=1)
        mask = torch.full((t, t), float("-inf")).triu(1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.o(o)
        h = rms(x, self.n2)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def main():
    p = argparse.ArgumentParser()
    for k, v in dict(dim=512, layers=4, heads=8, kv_heads=8, ffn=1376, vocab=32000, seq=256, batch=4, rank=16,
                     threads=2, steps=5, warmup=2).items():
        p.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    p.add_argument("--tied", action="store_true")
    p.add_argument("--autocast", choices=["none", "bf16"], default="none")
    p.add_argument("--rope-theta", type=float, default=10000.0)
    a = p.parse_args()
    if a.heads % a.kv_heads:
        raise SystemExit(f"--heads {a.heads} must be a multiple of --kv-heads {a.kv_heads}")
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    targets = ALL_LINEAR if a.targets == "all-linear" else a.targets.split(",")
    unknown = [t for t in targets if t not in ALL_LINEAR]
    if unknown:
        raise SystemExit(f"unknown --targets {unknown}; use {','.join(ALL_LINEAR)} or all-linear")
    emb = torch.randn(a.vocab, a.dim) * 0.02
    layers = nn.ModuleList([Layer(a, targets) for _ in range(a.layers)])
    norm = torch.ones(a.dim)
    head = emb if a.tied else torch.randn(a.vocab, a.dim) * 0.02
    params = [q for q in layers.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    hd = a.dim // a.heads
    inv = 1.0 / (a.rope_theta ** (torch.arange(0, hd, 2).float() / hd))
    fr = torch.outer(torch.arange(a.seq).float(), inv)
    e = torch.cat((fr, fr), -1)
    cos, sin = e.cos(), e.sin()
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    times = []
    cpus = []  # process CPU seconds per step (all threads): steadier than wall time on a shared machine
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            x = emb[ids]
            for l in layers:
                x = l(x, cos, sin)
            logits = F.linear(rms(x, norm)[:, :-1], head)
            loss = F.cross_entropy(logits.reshape(-1, a.vocab).float(), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        print(f"step {s}: {dt:.3f} s, loss {loss.item():.4f}")
        if s >= a.warmup:
            times.append(dt)
            cpus.append(time.process_time() - c0)
    n = a.batch * a.seq
    d, kvd, f = a.dim, a.kv_heads * hd, a.ffn
    proj = a.layers * 2 * n * (2 * d * d + 2 * d * kvd + 3 * d * f)
    attn = a.layers * a.batch * a.heads * 4.0 * a.seq * a.seq * hd
    shapes = {"q_proj": (d, d), "k_proj": (kvd, d), "v_proj": (kvd, d), "o_proj": (d, d), "gate_proj": (f, d),
              "up_proj": (f, d), "down_proj": (d, f)}
    lora = a.layers * sum(2 * n * a.rank * sum(shapes[m]) for m in targets)
    headf = 2.0 * a.batch * (a.seq - 1) * d * a.vocab
    flops = 2 * proj + 3 * attn + 3 * lora + 2 * headf
    step = sum(times) / len(times)
    out = {"torch_sft_tokens_per_s": round(n / step, 1), "torch_gflops": round(flops / step / 1e9, 1),
           "threads": a.threads, "torch": torch.__version__, "autocast": a.autocast, "tied": a.tied,
           "targets": targets, "kv_heads": a.kv_heads, "step_seconds": round(step, 3),
           "cpu_seconds": round(sum(cpus) / len(cpus), 3)}
    print(f"PyTorch SFT: {n / step:.0f} tokens/s, {flops / step / 1e9:.1f} GFLOP/s, step {step:.3f} s")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
