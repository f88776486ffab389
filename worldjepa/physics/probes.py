"""Physical probes: can the physical quantities an env exposes be read out of frozen embeddings?

    from worldjepa.physics.probes import run_probes
    result = run_probes(["runs/lejepa", "runs/tworoom"], "data/tworoom.h5")

For each run (a LeJEPA ``pretrain`` run: its encoder's output; a ``train`` run: the world
model's own latent, its image part), and for the first run's architecture with random
weights, frames of the dataset's train split are embedded and two probes are fitted per
quantity: a linear one (ridge regression, :func:`~worldjepa.metrics.linear_r2`) and a small
MLP (one hidden layer of 128, AdamW, full batch, early-stopped on held-out training frames). Both are scored by R^2 on the frames of the
test split: episodes the probes never saw.

A quantity is a named function of the recorded state (:func:`quantities`): positions,
velocities, angles as their sine and cosine (an angle's wrap-around is no linear function
of anything), the Push-T block pose. A single frame shows no velocity, so velocities are
expected near 0 for any encoder; they are reported all the same.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import torch

from ..errors import WorldJepaError

__all__ = ["QUANTITIES", "format_probe_table", "mlp_r2", "quantities", "run_probes"]
logger = logging.getLogger(__name__)


def _cols(names: list[str]) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    return lambda s: {n: s[:, i] for i, n in enumerate(names) if n}


def _angles(names: list[str], angles: dict[int, str]) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    def f(s: np.ndarray) -> dict[str, np.ndarray]:
        out = _cols(names)(s)
        for i, n in angles.items():
            out[f"sin {n}"], out[f"cos {n}"] = np.sin(s[:, i]), np.cos(s[:, i])
        return out
    return f


# env id prefix -> the quantities of its recorded state (None in a name: a column left out)
QUANTITIES: dict[str, Callable[[np.ndarray], dict[str, np.ndarray]]] = {
    "worldjepa/TwoRoomSwitch": _cols(["x", "y", "door open"]),
    "worldjepa/TwoRoomRandomDoor": _cols(["x", "y", "door y"]),
    "worldjepa/TwoRoom": _cols(["x", "y"]),
    "worldjepa/PointMaze": _cols(["x", "y", "vx", "vy"]),
    "worldjepa/Reacher": _angles(["", "", "dtheta1", "dtheta2"], {0: "theta1", 1: "theta2"}),
    "worldjepa/PushT": _angles(["pusher x", "pusher y", "block x", "block y", "", "block vx", "block vy",
                                "block omega"], {4: "block angle"}),
    "worldjepa/Balls": _cols([f"ball{i} {q}" for i in range(3) for q in ("x", "y", "vx", "vy")]),
}


def quantities(env_id: str, states: np.ndarray) -> dict[str, np.ndarray]:
    """The named physical quantities ``(N,)`` of recorded states ``(N, K)`` of ``env_id`` (an
    unknown env: ``state[i]`` for each column)."""
    f = next((f for prefix, f in QUANTITIES.items() if env_id.startswith(prefix)), None)
    if f is None:
        return {f"state[{i}]": states[:, i] for i in range(states.shape[1])}
    return f(states)


def mlp_r2(z_train: Any, y_train: Any, z_test: Any, y_test: Any, hidden: int = 128, steps: int = 500,
           lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0) -> tuple[list[float], np.ndarray]:
    """R^2 on the test set, per target column, of an MLP probe ``z (N, D) -> y (N, K)`` (one hidden
    layer of ``hidden``, GELU; standardised inputs and targets; full-batch AdamW for at most
    ``steps``, keeping the weights that did best on the last fifth of the training rows, held
    out: frames of other episodes when rows are in episode order), and its test predictions ``(M, K)``."""
    g = torch.Generator().manual_seed(seed)
    zt, zs = (torch.as_tensor(np.asarray(z), dtype=torch.float32) for z in (z_train, z_test))
    yt, ys = (torch.as_tensor(np.asarray(y), dtype=torch.float32).reshape(len(y), -1) for y in (y_train, y_test))
    mu, sd = zt.mean(0), zt.std(0)
    # a feature all but constant on the train rows says nothing, and must not be blown up where it
    # varies on the test rows: it is left out (scaled to 0)
    sd = torch.where(sd < max(1e-6, 1e-3 * float(sd.median())), torch.full_like(sd, float("inf")), sd)
    ym, ysd = yt.mean(0), yt.std(0).clamp_min(1e-6)
    zt, zs, yn = (zt - mu) / sd, (zs - mu) / sd, (yt - ym) / ysd
    cut = max(1, len(zt) * 4 // 5)  # fit on the first four fifths, pick the step on the rest
    net = torch.nn.Sequential(torch.nn.Linear(zt.shape[1], hidden), torch.nn.GELU(), torch.nn.Linear(hidden, yt.shape[1]))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (p.shape[-1] ** -0.5 if p.ndim > 1 else 0.0))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    best, state = float("inf"), None
    with torch.enable_grad():
        for step in range(steps + 1):
            if step % 10 == 0 or step == steps:
                with torch.no_grad():
                    held = float(torch.nn.functional.mse_loss(net(zt[cut:]), yn[cut:])) if cut < len(zt) else -step
                if held < best:
                    best, state = held, {k: v.clone() for k, v in net.state_dict().items()}
            if step == steps:
                break
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(zt[:cut]), yn[:cut])
            loss.backward()
            opt.step()
    net.load_state_dict(state)
    with torch.no_grad():
        pred = net(zs) * ysd + ym  # (M, K)
    ss_res = ((ys - pred) ** 2).sum(0)
    ss_tot = ((ys - ys.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return (1.0 - ss_res / ss_tot).tolist(), pred.numpy()


def _embedder(run: str, seed: int | None = None,
              device: Any = "cpu") -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """``(frames (N, S, S, 3) uint8 -> (N, E), meta)`` of a run, its model on ``device``; ``seed``:
    the same architecture, fresh weights."""
    from .. import checkpoint as ckpt
    from ..config import from_dict
    from ..configs import ModelConfig
    from ..encoder_model import EncoderModel, _arch, embed, load_encoder_model
    from ..nn import frames_to_float
    from ..world_model import build_world_model, load_world_model

    tensors, meta = ckpt.load(run)
    kind = meta.get("kind", "world_model")
    if kind == "lejepa":
        if seed is None:
            model = load_encoder_model(run)[0]
        else:
            torch.manual_seed(seed)
            model = EncoderModel(**_arch(meta, tensors)).eval()
        model = model.to(device)
        meta = {**meta, "frame_size": int(model.arch["size"]), "what": "LeJEPA encoder output"}
        return lambda f: embed(model, f).numpy(), meta
    if kind != "world_model":
        raise WorldJepaError(f"{run}: a {kind!r} checkpoint; probe a `worldjepa train` or `worldjepa pretrain` run")
    if seed is None:
        wm = load_world_model(run)[0]
    else:
        torch.manual_seed(seed)
        wm = build_world_model(from_dict(ModelConfig, meta["model"])).eval()
    wm = wm.to(device)

    @torch.no_grad()
    def f(frames: np.ndarray) -> np.ndarray:  # the latent's image part: proprioception would give the state away
        out = []
        for i in range(0, len(frames), 256):
            x = frames_to_float(frames[i:i + 256], next(wm.parameters()).device)
            out.append(wm.projector(wm.encoder(x)).cpu().numpy())
        return np.concatenate(out)

    return f, {**meta, "what": "world model latent (image part)"}


def run_probes(runs: list[str], data: str, *, max_frames: int = 4000, seed: int = 0, random_init: bool = True,
               mlp_steps: int = 500, device: str = "auto") -> dict[str, Any]:
    """Linear and MLP probe R^2 per quantity for each run (and the first run's architecture with
    random weights), trained on ``data``'s train split, scored on its test split. The encoders
    run on ``device`` (``auto``: CUDA when torch sees one), the probes on the CPU.

    Returns ``{"data", "env_id", "train_frames", "test_frames", "quantities", "encoders": [{"name",
    "what", "linear": {q: r2}, "mlp": {q: r2}, "pred": {q: the MLP probe's test predictions}}],
    "truth": {q: test values}}``.
    """
    from ..data.dataset import Dataset
    from ..data.images import load_frames
    from ..metrics import linear_r2

    if not runs:
        raise WorldJepaError("pass at least one run to probe (--run RUN)")
    with Dataset(data) as ds:
        env_id = ds.env_id
        if "state" not in ds.extras:
            raise WorldJepaError(f"{data} records no state: there is nothing physical to probe for")
    from ..utils import pick_device

    where = pick_device(device)
    encoders = [(str(r), *_embedder(r, device=where)) for r in runs]
    if random_init:
        encoders.append((f"{runs[0]} (random init)", *_embedder(runs[0], seed, where)))
    out: dict[str, Any] = {"data": str(data), "env_id": env_id, "encoders": []}
    cache: dict[int, tuple[Any, Any]] = {}
    for name, f, meta in encoders:
        size = int(meta["frame_size"])
        if size not in cache:
            cache[size] = (load_frames(data, "train", size, max_frames, seed),
                           load_frames(data, "test", size, max_frames, seed + 1))
        tr, te = cache[size]
        q_tr, q_te = quantities(env_id, tr.states), quantities(env_id, te.states)
        names = list(q_tr)
        y_tr, y_te = np.stack([q_tr[n] for n in names], 1), np.stack([q_te[n] for n in names], 1)  # (N, Q)
        z_tr, z_te = f(tr.frames), f(te.frames)
        logger.info("probing %s (%s): %d train, %d test frames", name, meta["what"], len(z_tr), len(z_te))
        lin = linear_r2(z_tr, y_tr, z_te, y_te)["r2_per_target"]
        mlp, pred = mlp_r2(z_tr, y_tr, z_te, y_te, steps=mlp_steps, seed=seed)
        out.update(train_frames=len(z_tr), test_frames=len(z_te), quantities=names,
                   truth={n: y_te[:, i] for i, n in enumerate(names)})
        out["encoders"].append({"name": name, "what": meta["what"], "linear": dict(zip(names, lin)),
                                "mlp": dict(zip(names, mlp)), "pred": {n: pred[:, i] for i, n in enumerate(names)}})
    return out


def format_probe_table(result: dict[str, Any]) -> str:
    """One row per quantity, linear and MLP R^2 for each encoder."""
    encs = result["encoders"]
    head = f"{'quantity':<14}" + "".join(f" {'linear':>8} {'MLP':>6} |" for _ in encs)
    names = "\n".join(f"  [{i + 1}] {e['name']}: {e['what']}" for i, e in enumerate(encs))
    lines = [names, f"{'':<14}" + "".join(f" {'[' + str(i + 1) + ']':>15} |" for i in range(len(encs))), head,
             "-" * len(head)]
    for q in result["quantities"]:
        lines.append(f"{q:<14}" + "".join(f" {e['linear'][q]:>8.3f} {e['mlp'][q]:>6.3f} |" for e in encs))
    return "\n".join(lines)
