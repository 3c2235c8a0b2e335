#!/usr/bin/env python3
"""Independent reference for Lathe's preference losses: TRL's formulas written in torch, with
gradients by autograd.   python3 pref_loss_ref.py OUT.json"""
import json
import sys

import torch
import torch.nn.functional as F


def dpo(kind, beta, eps, pc, pr, rc, rr):
    h = (pc - pr) - (rc - rr)
    if kind == "sigmoid":
        l = -F.logsigmoid(beta * h) * (1 - eps) - F.logsigmoid(-beta * h) * eps
    elif kind == "robust":
        l = (-F.logsigmoid(beta * h) * (1 - eps) + F.logsigmoid(-beta * h) * eps) / (1 - 2 * eps)
    elif kind == "hinge":
        l = torch.relu(1 - beta * h)
    elif kind == "ipo":
        l = (h - 1 / (2 * beta)) ** 2
    return l.mean()


def kto(beta, wd, wu, pol, ref, des, klp, klr):
    kl = (klp - klr).mean().clamp(min=0).detach()
    logr = pol - ref
    l = torch.where(des, wd * (1 - torch.sigmoid(beta * (logr - kl))), wu * (1 - torch.sigmoid(beta * (kl - logr))))
    return l.mean()


def main():
    g = torch.Generator().manual_seed(3)
    n = 6
    pc, pr, rc, rr = [(torch.randn(n, generator=g, dtype=torch.float64) * 3 - 20) for _ in range(4)]
    out = {"pc": pc.tolist(), "pr": pr.tolist(), "rc": rc.tolist(), "rr": rr.tolist(), "dpo": {}}
    for kind, beta, eps in [("sigmoid", 0.1, 0.0), ("sigmoid", 0.5, 0.2), ("robust", 0.1, 0.1), ("hinge", 0.3, 0.0),
                            ("ipo", 0.1, 0.0)]:
        a, b = pc.clone().requires_grad_(), pr.clone().requires_grad_()
        loss = dpo(kind, beta, eps, a, b, rc, rr)
        loss.backward()
        out["dpo"][f"{kind}-{beta}-{eps}"] = {"loss": loss.item(), "dc": a.grad.tolist(), "dr": b.grad.tolist()}
    pol = torch.randn(n, generator=g, dtype=torch.float64) * 2 - 15
    ref = pol + torch.randn(n, generator=g, dtype=torch.float64)
    des = torch.tensor([True, False, True, True, False, False])
    klp = torch.randn(n, generator=g, dtype=torch.float64) - 15
    klr = klp - 0.5 + torch.randn(n, generator=g, dtype=torch.float64) * 0.1
    p = pol.clone().requires_grad_()
    loss = kto(0.1, 1.0, 1.33, p, ref, des, klp, klr)
    loss.backward()
    out["kto"] = {"pol": pol.tolist(), "ref": ref.tolist(), "des": des.tolist(), "klp": klp.tolist(),
                  "klr": klr.tolist(), "loss": loss.item(), "d": p.grad.tolist()}
    json.dump(out, open(sys.argv[1], "w"))


if __name__ == "__main__":
    main()
