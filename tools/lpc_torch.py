"""PyTorch twin of Sources/LPC (the math core of Latent Preference Coding over a frozen backbone).

Same parameter names, shapes and math as the Swift code, so goldens (tools/lpc_reference.py) and
the later throughput benchmark compare like with like. Autograd does the backward here: that is
the independent check of the Swift code's hand-written backward.

Parameter names (PyTorch-style, also the safetensors names of a Swift head checkpoint):
    codebook.weight        [K, d]     (LPC only)
    prior.0.weight [d, d]  prior.0.bias [d]  prior.2.weight [K, d]  prior.2.bias [K]       (LPC only)
    posterior.0.weight [d, 2d]  posterior.0.bias [d]  posterior.2.weight [K, d]  posterior.2.bias [K]
    head.down.weight       [r, d]     V
    head.up.weight         [d, r]     U (zero-initialised)

Batch layout (the Swift `PreferenceBatch`): B pairs, 2B sequences ordered
(chosen_0, rejected_0, chosen_1, rejected_1, ...); their token rows packed into one matrix:
    hx [B, d], hw [B, d], hl [B, d]      prompt-last, prompt+chosen-last, prompt+rejected-last hidden
    H [N, d]   ids [N]   seq [N]          token rows, target ids, sequence index of each row
    lengths [2B]   ref [2B]               response lengths, summed reference log-probs
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

OBJECTIVES = ("dpo", "simpo", "ipo")


def default_config(**overrides) -> dict:
    cfg = dict(d=576, vocab=49152, K=32, r=64, use_lpc=True, objective="dpo",
               beta=None, simpo_gamma=None, ipo_tau=0.1, reduction=None, kl_weight=0.05,
               prior_code="gumbel", codebook_init_std=0.02)
    cfg.update(overrides)
    return cfg


def beta_of(cfg) -> float:
    if cfg["beta"] is not None:
        return cfg["beta"]
    return {"dpo": 0.1, "simpo": 2.0, "ipo": 0.1}[cfg["objective"]]


def reduction_of(cfg) -> str:
    if cfg["objective"] == "simpo":
        return "mean"
    if cfg["reduction"] is not None:
        return cfg["reduction"]
    return {"dpo": "sum", "ipo": "mean"}[cfg["objective"]]


class LatentHead(nn.Module):
    """h~ = u + U gelu(V u), u = h + z."""

    def __init__(self, d: int, r: int):
        super().__init__()
        self.down = nn.Linear(d, r, bias=False)
        self.up = nn.Linear(r, d, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, u):
        return u + self.up(F.gelu(self.down(u)))


class LPCModule(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        d, K, r = cfg["d"], cfg["K"], cfg["r"]
        self.cfg = cfg
        if cfg["use_lpc"]:
            self.codebook = nn.Embedding(K, d)
            nn.init.normal_(self.codebook.weight, 0.0, cfg["codebook_init_std"])
            self.prior = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, K))
            self.posterior = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, K))
        self.head = LatentHead(d, r)


def lpc_loss(model: LPCModule, W, batch: dict, noise_post, noise_prior, g: float, tau: float):
    """Mean preference loss over the batch (+ λ·mean KL with LPC) and TRL-named metrics.

    W: frozen LM head [vocab, d]. noise_post / noise_prior: Gumbel noise [B, K] (ignored without LPC).
    """
    cfg = model.cfg
    H, ids, seq = batch["H"], batch["ids"], batch["seq"]
    B = batch["hx"].shape[0]
    metrics = {}
    if cfg["use_lpc"]:
        E = model.codebook.weight
        lq = model.posterior(torch.cat([batch["hw"], batch["hl"]], dim=1))  # [B, K]
        lp = model.prior(batch["hx"])                                        # [B, K]
        w_post = torch.softmax((lq + noise_post) / tau, dim=1)
        if cfg["prior_code"] == "gumbel":
            w_prior = torch.softmax((lp + noise_prior) / tau, dim=1)
        else:  # "mean": the prior's expected code
            w_prior = torch.softmax(lp, dim=1)
        z = g * (w_prior @ E) + (1.0 - g) * (w_post @ E)                    # [B, d]
        u = H + z[seq // 2]
        logq, logp = F.log_softmax(lq, dim=1), F.log_softmax(lp, dim=1)
        q, p = logq.exp(), logp.exp()
        kl = (q * (logq - logp)).sum(dim=1)                                  # [B]
        qbar = q.mean(dim=0)
        metrics["kl"] = kl.mean()
        metrics["entropy/prior"] = -(p * logp).sum(dim=1).mean()
        metrics["entropy/posterior"] = -(q * logq).sum(dim=1).mean()
        metrics["codes/perplexity"] = torch.exp(-(qbar * torch.log(qbar)).sum())
    else:
        u = H
    htil = model.head(u)
    if W.dtype == torch.bfloat16:
        # Benchmark variant (tools/bench_training.py): the LM head matmuls in bf16 with float32
        # accumulation (oneDNN; AMX where present), the log-softmax in float32. W is cast once by
        # the caller. The float32 path below is the one the goldens use.
        logits = (htil.to(torch.bfloat16) @ W.T).float()
    else:
        logits = htil @ W.T
    tok = F.log_softmax(logits, dim=1).gather(1, ids[:, None].long())[:, 0]  # [N]
    sums = torch.zeros(2 * B, dtype=H.dtype).index_add_(0, seq.long(), tok)
    pi_w, pi_l = sums[0::2], sums[1::2]
    ref_w, ref_l = batch["ref"][0::2], batch["ref"][1::2]
    len_w, len_l = batch["lengths"][0::2].to(H.dtype), batch["lengths"][1::2].to(H.dtype)
    beta = beta_of(cfg)
    obj = cfg["objective"]
    if obj == "simpo":
        gamma = cfg["simpo_gamma"] if cfg["simpo_gamma"] is not None else 0.5 * beta
        logits = beta * (pi_w / len_w - pi_l / len_l) - gamma
        losses = -F.logsigmoid(logits)
        reward_scale = beta
    else:
        rw, rl = pi_w - ref_w, pi_l - ref_l
        if reduction_of(cfg) == "mean":
            rw, rl = rw / len_w, rl / len_l
        if obj == "dpo":
            losses = -F.logsigmoid(beta * (rw - rl))
            reward_scale = beta
        else:
            losses = (rw - rl - 1.0 / (2.0 * cfg["ipo_tau"])) ** 2
            reward_scale = cfg["ipo_tau"]
    pref = losses.mean()
    loss = pref + cfg["kl_weight"] * metrics["kl"] if cfg["use_lpc"] else pref
    # Implicit rewards: scale·(log π − log π_ref) with summed log-probs (LPC.md), every objective.
    rc = reward_scale * (pi_w - ref_w)
    rr = reward_scale * (pi_l - ref_l)
    metrics.update({
        "loss": loss, "loss/preference": pref,
        "rewards/chosen": rc.mean(), "rewards/rejected": rr.mean(),
        "rewards/accuracies": (rc > rr).to(H.dtype).mean(), "rewards/margins": (rc - rr).mean(),
        "logps/chosen": pi_w.mean(), "logps/rejected": pi_l.mean(),
    })
    return loss, {k: float(v.detach()) for k, v in metrics.items()}


# ---- schedules (transformers' get_{cosine,linear,constant}_schedule_with_warmup lambdas) --------

def lr_factor(step: int, warmup: int, total: int, kind: str) -> float:
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    if kind == "linear":
        return max(0.0, (total - step) / max(1, total - warmup))
    raise ValueError(kind)


def ramp(step: int, total: int, start: float, end: float) -> float:
    """Linear from `start` at step 0 to `end` at step total-1 (g and the Gumbel temperature)."""
    t = min(1.0, step / max(1, total - 1))
    return start + (end - start) * t
