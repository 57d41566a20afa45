#!/usr/bin/env python3
"""Writes the LPC training goldens used by Tests/LPCTests into Tests/Fixtures/lpc/.

PyTorch (float64, autograd) runs the math of tools/lpc_torch.py on a tiny problem
(d=16, vocab=50, K=4, r=8, 4 pairs with different response lengths). Inputs and initial
parameters are float32 values (the Swift side reads them exactly); everything computed is float64.

  inputs.safetensors        lm_head.weight [V,d], hx/hw/hl [B,d], H [N,d], ids/seq [N] (int64),
                            lengths [2B] (int64), ref [2B], noise.post / noise.prior [B,K] (Gumbel)
  params_grad.safetensors   parameters for the step-0 gradient goldens: PyTorch-default init, then
                            head.up.weight ~ N(0, 0.3) and codebook ~ N(0, 0.5) so that every
                            gradient is non-trivial (with U = 0, head.down's gradient is exactly 0)
  params_init.safetensors   parameters for the trajectories: the documented init (U = 0,
                            codebook ~ N(0, 0.02))
  grad_<case>.safetensors   loss, metric.<name>, grad.<param> at g = 0.3, tau = 0.8
  traj_<case>.safetensors   20 AdamW steps (warmup + cosine, clipping, 2 micro-batches of 2 pairs
                            accumulated, g ramp 0->1, tau ramp 1->0.5): noise.post / noise.prior
                            [steps, micro, 2, K], loss [steps] (before each update), grad_norm
                            [steps] (before clipping), lr [steps], final.<param>
  manifest.json             cases, their configs, hyper-parameters, versions

Deterministic (fixed seeds). Usage:  PY=$(tools/venv.sh); $PY tools/lpc_reference.py
       $PY tools/lpc_reference.py --check-head DIR   loads a Swift-written head folder (config.json +
       head.safetensors) into tools/lpc_torch.LPCModule with strict names and shapes, and exits.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lpc_torch as L  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "lpc"
GENERATOR = "tools/lpc_reference.py"

D, V, K, R = 16, 50, 4, 8
CHOSEN_LENGTHS = [3, 7, 1, 6]
REJECTED_LENGTHS = [5, 2, 4, 6]
GRAD_G, GRAD_TAU = 0.3, 0.8
TRAJ = dict(steps=20, lr=0.02, warmup=3, schedule="cosine", max_grad_norm=0.2, weight_decay=0.01,
            betas=[0.9, 0.999], eps=1e-8, micro_batches=[[0, 1], [2, 3]],
            g_start=0.0, g_end=1.0, tau_start=1.0, tau_end=0.5)

CASES = {
    "dpo_lpc": dict(objective="dpo", use_lpc=True),
    "dpo_nolpc": dict(objective="dpo", use_lpc=False),
    "simpo_lpc": dict(objective="simpo", use_lpc=True),
    "simpo_nolpc": dict(objective="simpo", use_lpc=False),
    "ipo_lpc": dict(objective="ipo", use_lpc=True),
    "ipo_nolpc": dict(objective="ipo", use_lpc=False),
    "ipo_sum_lpc": dict(objective="ipo", use_lpc=True, reduction="sum"),
    "dpo_lpc_priormean": dict(objective="dpo", use_lpc=True, prior_code="mean"),
}
TRAJ_CASES = ["dpo_lpc", "dpo_nolpc", "simpo_lpc", "simpo_nolpc", "ipo_lpc", "ipo_nolpc"]

f32 = np.float32


def gumbel(rng, shape):
    u = rng.random(shape)
    u = np.clip(u, 1e-12, 1 - 1e-12)
    return (-np.log(-np.log(u))).astype(f32)


def make_inputs():
    rng = np.random.default_rng(20250505)
    B = len(CHOSEN_LENGTHS)
    lengths = [x for pair in zip(CHOSEN_LENGTHS, REJECTED_LENGTHS) for x in pair]
    N = sum(lengths)
    inp = {
        "lm_head.weight": (rng.standard_normal((V, D)) * 0.5).astype(f32),
        "hx": rng.standard_normal((B, D)).astype(f32),
        "hw": rng.standard_normal((B, D)).astype(f32),
        "hl": rng.standard_normal((B, D)).astype(f32),
        "H": rng.standard_normal((N, D)).astype(f32),
        "ids": rng.integers(0, V, N).astype(np.int64),
        "seq": np.repeat(np.arange(2 * B), lengths).astype(np.int64),
        "lengths": np.array(lengths, dtype=np.int64),
        "noise.post": gumbel(rng, (B, K)),
        "noise.prior": gumbel(rng, (B, K)),
    }
    # Reference log-probs: the frozen backbone without any head, summed per sequence (float64 -> f32).
    W = torch.from_numpy(inp["lm_head.weight"]).double()
    H = torch.from_numpy(inp["H"]).double()
    tok = torch.log_softmax(H @ W.T, 1).gather(1, torch.from_numpy(inp["ids"])[:, None])[:, 0]
    ref = torch.zeros(2 * B, dtype=torch.float64).index_add_(0, torch.from_numpy(inp["seq"]), tok)
    inp["ref"] = ref.numpy().astype(f32)
    return inp


def full_cfg(case: dict) -> dict:
    return L.default_config(d=D, vocab=V, K=K, r=R, **case)


def make_params(seed: int, grad_variant: bool) -> dict:
    torch.manual_seed(seed)
    m = L.LPCModule(full_cfg(dict(use_lpc=True)))
    if grad_variant:
        with torch.no_grad():
            m.head.up.weight.normal_(0.0, 0.3)
            m.codebook.weight.normal_(0.0, 0.5)
    return {k: v.detach().numpy().astype(f32) for k, v in m.state_dict().items()}


def build(cfg: dict, params: dict):
    m = L.LPCModule(cfg).double()
    sd = {k: torch.from_numpy(v).double() for k, v in params.items() if k in m.state_dict()}
    m.load_state_dict(sd, strict=True)
    return m


def torch_batch(inp: dict, pairs=None) -> dict:
    B = inp["hx"].shape[0]
    pairs = list(range(B)) if pairs is None else pairs
    seqs = [s for i in pairs for s in (2 * i, 2 * i + 1)]
    rows = np.concatenate([np.nonzero(inp["seq"] == s)[0] for s in seqs])
    remap = {s: j for j, s in enumerate(seqs)}
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).double()  # noqa: E731
    return {
        "hx": t(inp["hx"][pairs]), "hw": t(inp["hw"][pairs]), "hl": t(inp["hl"][pairs]),
        "H": t(inp["H"][rows]), "ids": torch.from_numpy(inp["ids"][rows]),
        "seq": torch.tensor([remap[s] for s in inp["seq"][rows]], dtype=torch.int64),
        "lengths": torch.from_numpy(inp["lengths"][seqs]), "ref": t(inp["ref"][seqs]),
    }


def grad_case(name, case, inp, params):
    cfg = full_cfg(case)
    m = build(cfg, params)
    W = torch.from_numpy(inp["lm_head.weight"]).double()
    loss, metrics = L.lpc_loss(m, W, torch_batch(inp), torch.from_numpy(inp["noise.post"]).double(),
                               torch.from_numpy(inp["noise.prior"]).double(), GRAD_G, GRAD_TAU)
    loss.backward()
    out = {"loss": np.array(float(loss.detach()), dtype=np.float64)}
    for k, v in metrics.items():
        out["metric." + k] = np.array(v, dtype=np.float64)
    for k, p in m.named_parameters():
        out["grad." + k] = p.grad.numpy().astype(np.float64)
    save_file(out, str(OUT / f"grad_{name}.safetensors"))
    return float(loss.detach())


def traj_case(name, case, inp, params):
    cfg = full_cfg(case)
    m = build(cfg, params)
    W = torch.from_numpy(inp["lm_head.weight"]).double()
    T = TRAJ
    opt = torch.optim.AdamW(m.parameters(), lr=T["lr"], betas=tuple(T["betas"]), eps=T["eps"],
                            weight_decay=T["weight_decay"], foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: L.lr_factor(s, T["warmup"], T["steps"], T["schedule"]))
    rng = np.random.default_rng(sum(map(ord, name)))
    steps, micro = T["steps"], T["micro_batches"]
    npost = np.zeros((steps, len(micro), len(micro[0]), K), f32)
    nprior = np.zeros_like(npost)
    losses, norms, lrs = [], [], []
    batches = [torch_batch(inp, pairs) for pairs in micro]
    for step in range(steps):
        g = L.ramp(step, steps, T["g_start"], T["g_end"])
        tau = L.ramp(step, steps, T["tau_start"], T["tau_end"])
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        total = 0.0
        for j, b in enumerate(batches):
            npost[step, j] = gumbel(rng, (len(micro[j]), K))
            nprior[step, j] = gumbel(rng, (len(micro[j]), K))
            loss, _ = L.lpc_loss(m, W, b, torch.from_numpy(npost[step, j]).double(),
                                 torch.from_numpy(nprior[step, j]).double(), g, tau)
            (loss / len(batches)).backward()
            total += float(loss.detach()) / len(batches)
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), T["max_grad_norm"])
        losses.append(total)
        norms.append(float(norm))
        opt.step()
        sched.step()
    out = {"noise.post": npost, "noise.prior": nprior, "loss": np.array(losses),
           "grad_norm": np.array(norms), "lr": np.array(lrs)}
    for k, p in m.named_parameters():
        out["final." + k] = p.detach().numpy().astype(np.float64)
    save_file(out, str(OUT / f"traj_{name}.safetensors"))
    return losses, norms


def check_head(folder: str):
    """A head written by Swift (LPCCheckpoint.saveHead) loads into the PyTorch twin, strictly."""
    from safetensors.torch import load_file
    cfg_json = json.loads((Path(folder) / "config.json").read_text())["model"]
    cfg = L.default_config(d=cfg_json["hidden_size"], vocab=cfg_json["vocab_size"], K=cfg_json["codes"],
                           r=cfg_json["rank"], use_lpc=cfg_json["use_lpc"], objective=cfg_json["objective"])
    m = L.LPCModule(cfg)
    state = load_file(str(Path(folder) / "head.safetensors"))
    m.load_state_dict(state, strict=True)
    print(f"ok: {len(state)} tensors load strictly into LPCModule "
          f"(d={cfg['d']}, K={cfg['K']}, r={cfg['r']}, use_lpc={cfg['use_lpc']})")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-head":
        check_head(sys.argv[2])
        return
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    inp = make_inputs()
    save_file(inp, str(OUT / "inputs.safetensors"))
    pgrad = make_params(1, grad_variant=True)
    pinit = make_params(2, grad_variant=False)
    save_file(pgrad, str(OUT / "params_grad.safetensors"))
    save_file(pinit, str(OUT / "params_init.safetensors"))
    manifest = {
        "generator": GENERATOR, "torch": torch.__version__, "numpy": np.__version__,
        "dims": dict(d=D, vocab=V, K=K, r=R, pairs=len(CHOSEN_LENGTHS),
                     chosen_lengths=CHOSEN_LENGTHS, rejected_lengths=REJECTED_LENGTHS),
        "grad": dict(g=GRAD_G, tau=GRAD_TAU), "trajectory": TRAJ, "cases": {},
    }
    for name, case in CASES.items():
        cfg = full_cfg(case)
        entry = {"config": {k: cfg[k] for k in ("objective", "use_lpc", "prior_code", "kl_weight",
                                                  "ipo_tau")},
                 "beta": L.beta_of(cfg), "reduction": L.reduction_of(cfg)}
        entry["grad_loss"] = grad_case(name, case, inp, pgrad)
        if name in TRAJ_CASES:
            losses, norms = traj_case(name, case, inp, pinit)
            entry["trajectory"] = True
            clipped = sum(n > TRAJ["max_grad_norm"] for n in norms)
            print(f"{name:18s} grad loss {entry['grad_loss']:.6f}  traj {losses[0]:.5f} -> "
                  f"{losses[-1]:.5f}  clipped {clipped}/{len(norms)} "
                  f"norms {min(norms):.3g}..{max(norms):.3g}")
        else:
            print(f"{name:18s} grad loss {entry['grad_loss']:.6f}")
        manifest["cases"][name] = entry
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for f in OUT.iterdir():
        f.chmod(0o644)


if __name__ == "__main__":
    main()
