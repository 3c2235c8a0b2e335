#!/usr/bin/env python3
"""Independent reference for Lathe's NF4 quantisation: bitsandbytes' definitions written in torch
(NF4 code book, blocks of 64 with an fp32 absmax, two codes per byte with the first in the high
nibble, the last block short (zero-padded for the codes); double quantisation of the absmax with create_dynamic_map in
blocks of 256 after subtracting the mean).    python3 nf4_ref.py OUT.json"""
import json
import sys

import torch

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    # as bitsandbytes.functional.create_dynamic_map
    data = []
    non_sign_bits = total_bits - (1 if signed else 0)
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def nearest(code, x):
    return (x.unsqueeze(-1) - code.unsqueeze(0)).abs().argmin(dim=-1)


def quantize(w, double_quant):
    code = torch.tensor(NF4, dtype=torch.float32)
    flat = w.reshape(-1).float()
    n = flat.numel()
    blocks = (n + 63) // 64
    padded = torch.zeros(blocks * 64)
    padded[:n] = flat
    b = padded.view(blocks, 64)
    absmax = b.abs().max(dim=1).values
    q = nearest(code, (b * (1.0 / absmax.clamp(min=1e-30)).unsqueeze(1)).reshape(-1)).view(-1)
    packed = ((q[0::2] << 4) | q[1::2])[:(n + 1) // 2]  # bitsandbytes keeps ceil(n/2) bytes
    out = {"packed": packed.tolist(), "absmax": absmax.tolist()}
    if double_quant:
        dmap = create_dynamic_map()
        offset = absmax.mean()
        a = absmax - offset
        nb = (blocks + 255) // 256
        codes, scales = [], []
        for k in range(nb):
            part = a[k * 256:(k + 1) * 256]
            m = part.abs().max()
            scales.append(m.item())
            codes += nearest(dmap, part * (1.0 / m)).tolist()  # the kernel multiplies by 1/absmax
        out.update({"offset": offset.item(), "nested_absmax": scales, "nested_codes": codes})
    deq = code[q].view(blocks, 64) * absmax.unsqueeze(1)
    out["max_abs_error"] = (deq.reshape(-1)[:n] - flat).abs().max().item()
    return out


def main():
    g = torch.Generator().manual_seed(7)
    w = torch.randn(130, 127, generator=g) * 0.02  # 16510 values: the last block is padded
    res = {"dynamic_map": create_dynamic_map().tolist(), "nf4": NF4, "shape": [130, 127],
           "weight": w.reshape(-1).tolist(), "single": quantize(w, False), "double": quantize(w, True)}
    json.dump(res, open(sys.argv[1], "w"))


if __name__ == "__main__":
    main()
