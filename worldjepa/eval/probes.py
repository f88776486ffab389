"""Probes of frozen embeddings: what do they know, and have they collapsed?

All functions take numpy or torch inputs, work on the CPU in float64 and are deterministic:
- :func:`linear_r2`: ridge regression from embeddings to targets (e.g. the agent's
  position), fitted on one set and scored (R^2 per target and mean) on another;
- :func:`linear_accuracy`: a multinomial logistic-regression probe on labels;
- :func:`knn_accuracy`: k-nearest-neighbour classification (cosine similarity);
- :func:`rankme`: the effective rank of embeddings (RankMe, Garrido et al. 2023):
  ``exp(entropy(singular values / sum))``, between 1 (collapsed) and ``min(N, D)``;
- :func:`evaluate_encoder`: all of the above for a frozen encoder on a dataset's train
  (fit) and test (score) frames; :func:`format_table` prints its result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WorldJepaError

__all__ = ["evaluate_encoder", "format_table", "knn_accuracy", "linear_accuracy", "linear_r2", "rankme"]


def _t(x: Any) -> Any:
    import torch

    if torch.is_tensor(x):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _check(z_train: Any, y_train: Any, z_test: Any, y_test: Any) -> None:
    """Raise WorldJepaError unless train/test pairs have matching lengths and feature dims."""
    if len(z_train) != len(y_train) or len(z_test) != len(y_test):
        raise WorldJepaError(f"probe: {len(z_train)} train embeddings vs {len(y_train)} targets, "
                             f"{len(z_test)} test embeddings vs {len(y_test)} targets")
    if len(z_train) < 2 or len(z_test) < 1:
        raise WorldJepaError(f"probe: need >= 2 train and >= 1 test samples, got {len(z_train)} and {len(z_test)}")
    if np.shape(z_train)[1:] != np.shape(z_test)[1:]:
        raise WorldJepaError(f"probe: train and test embeddings differ in shape: "
                             f"{tuple(np.shape(z_train))} vs {tuple(np.shape(z_test))}")


def _standardise(train: Any, test: Any) -> tuple[Any, Any]:
    mu, sd = train.mean(0, keepdim=True), train.std(0, keepdim=True).clamp_min(1e-8)
    return (train - mu) / sd, (test - mu) / sd


def linear_r2(z_train: Any, y_train: Any, z_test: Any, y_test: Any, ridge: float = 1e-3) -> dict[str, Any]:
    """Ridge regression ``y ~ z``; R^2 on the test set per target column and averaged.

    z: (N, D), y: (N, K). Features are standardised on the training set; ``ridge`` is
    relative to the number of training samples.
    """
    _check(z_train, y_train, z_test, y_test)
    import torch

    zt, zs = _standardise(_t(z_train), _t(z_test))
    yt, ys = _t(y_train), _t(y_test)
    if yt.ndim == 1:
        yt, ys = yt[:, None], ys[:, None]
    X = torch.cat([zt, torch.ones(len(zt), 1, dtype=zt.dtype)], 1)  # (N, D + 1)
    Xs = torch.cat([zs, torch.ones(len(zs), 1, dtype=zs.dtype)], 1)
    reg = ridge * len(X) * torch.eye(X.shape[1], dtype=X.dtype)
    reg[-1, -1] = 0.0  # no penalty on the bias
    W = torch.linalg.solve(X.T @ X + reg, X.T @ yt)  # (D + 1, K)
    pred = Xs @ W
    ss_res = ((ys - pred) ** 2).sum(0)
    ss_tot = ((ys - ys.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    r2 = 1.0 - ss_res / ss_tot  # (K,)
    return {"r2": float(r2.mean()), "r2_per_target": r2.tolist()}


def linear_accuracy(z_train: Any, labels_train: Any, z_test: Any, labels_test: Any, steps: int = 300,
                    weight_decay: float = 1e-4) -> float:
    """Accuracy of a logistic-regression probe (full-batch L-BFGS on standardised features)."""
    _check(z_train, labels_train, z_test, labels_test)
    import torch

    zt, zs = _standardise(_t(z_train), _t(z_test))
    yt = torch.as_tensor(np.asarray(labels_train), dtype=torch.long)
    ys = torch.as_tensor(np.asarray(labels_test), dtype=torch.long)
    n_cls = int(max(yt.max(), ys.max())) + 1
    lin = torch.nn.Linear(zt.shape[1], n_cls, dtype=torch.float64)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(zt), yt) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((lin(zs).argmax(1) == ys).double().mean())


def knn_accuracy(z_train: Any, labels_train: Any, z_test: Any, labels_test: Any, k: int = 20) -> float:
    """k-NN accuracy with cosine similarity and a majority vote."""
    _check(z_train, labels_train, z_test, labels_test)
    import torch

    zt = torch.nn.functional.normalize(_t(z_train), dim=1)
    zs = torch.nn.functional.normalize(_t(z_test), dim=1)
    yt = torch.as_tensor(np.asarray(labels_train), dtype=torch.long)
    ys = torch.as_tensor(np.asarray(labels_test), dtype=torch.long)
    idx = (zs @ zt.T).topk(min(k, len(zt)), dim=1).indices  # (Ns, k)
    votes = torch.nn.functional.one_hot(yt[idx], int(yt.max()) + 1).sum(1)  # (Ns, C)
    return float((votes.argmax(1) == ys).double().mean())


def rankme(z: Any, eps: float = 1e-7, center: bool = False) -> float:
    """Effective rank of (N, D) embeddings: 1 means collapsed to a line, D means full use.

    ``center=True`` removes the mean embedding first, so a constant offset (which carries
    no information, and dominates the spectrum of an encoder without output normalisation)
    does not count as one used dimension; a constant batch then has rank ~0 -> reported 1.
    """
    import torch

    x = _t(z)
    if center:
        x = x - x.mean(0, keepdim=True)
    s = torch.linalg.svdvals(x)
    p = s / s.sum().clamp_min(eps) + eps
    return float(torch.exp(-(p * p.log()).sum()))


def evaluate_encoder(run_or_model: Any, data: str | Path,
                     max_frames: int = 4000, k: int = 20, seed: int = 0) -> dict[str, Any]:
    """Frozen-encoder probes of a LeJEPA model (or run directory / checkpoint) on ``data``.

    Embeddings are the encoder's (before the projector), in eval mode;
    probes are fitted on train-split frames and scored on test-split frames.

    Returns ``eval/r2`` (ridge regression of the state, mean over state dimensions, with
    ``eval/r2_per_target``) when the data has states; ``eval/knn_acc`` and
    ``eval/linear_acc`` when it has labels (k-NN with ``k``, at most a quarter of the
    training frames); always ``eval/rank`` (centred RankMe of the projected
    test embeddings, where SIGReg acts: between 1 = collapsed and min(M, P)),
    ``eval/rank_embed`` (centred RankMe of the encoder's test embeddings), ``eval/proj_std``
    (mean per-dimension std of the projected test embeddings: RankMe is scale-free, so a
    collapse of scale shows here, not there) and the counts.
    """
    import torch

    from ..data.images import load_frames
    from ..training.pretrain import embed, load_model

    if isinstance(run_or_model, torch.nn.Module):
        model = run_or_model
    else:
        model = load_model(run_or_model)[0]
    size = model.arch["size"]
    tr = load_frames(data, "train", size, max_frames, seed)
    te = load_frames(data, "test", size, max_frames, seed + 1)
    z_tr, z_te = embed(model, tr.frames), embed(model, te.frames)  # (N, E), (M, E)
    with torch.no_grad():
        p_te = model.eval().projector(z_te)  # (M, P) where the regulariser acts
    out: dict[str, Any] = {"eval/n_train": len(tr), "eval/n_test": len(te),
                           "eval/rank": rankme(p_te, center=True), "eval/rank_embed": rankme(z_te, center=True),
                           "eval/proj_std": float(p_te.std(0).mean())}
    if tr.states is not None:
        r = linear_r2(z_tr, tr.states, z_te, te.states)
        out["eval/r2"], out["eval/r2_per_target"] = r["r2"], r["r2_per_target"]
    if tr.labels is not None:
        out["eval/knn_acc"] = knn_accuracy(z_tr, tr.labels, z_te, te.labels, k=max(1, min(k, len(tr) // 4)))
        out["eval/linear_acc"] = linear_accuracy(z_tr, tr.labels, z_te, te.labels)
    return out


def format_table(result: dict[str, Any]) -> str:
    """A markdown table of an :func:`evaluate_encoder` result (one row per metric)."""
    rows = [("metric", "value"), ("---", "---")]
    for key, v in result.items():
        if isinstance(v, float):
            v = f"{v:.4f}"
        elif isinstance(v, list):
            v = "[" + ", ".join(f"{x:.4f}" for x in v) + "]"
        rows.append((key, str(v)))
    return "\n".join(f"| {a} | {b} |" for a, b in rows)
