"""Encoders brought from outside: any ``nn.Module`` a callable builds (``pkg.mod:build``; a timm
or torchvision constructor, or your own), with weights the user already has on disk
(safetensors), as the image encoder of a world model.

A checkpoint records how to rebuild the module (the import path and its keyword arguments, in
the model config's ``encoder``) and holds its weights; nothing is pickled and nothing is
downloaded. Importing and calling what a file names would let a checkpoint run any code, so a
module path is only used when it is **trusted**: named by the caller of this process (``train
--encoder-module``; :func:`trust_module` from Python) or listed in the environment variable
``WORLDJEPA_TRUST_MODULES`` (comma-separated), e.g. for ``eval`` or ``plan`` of such a run.

The wrapped module sees frames ``(B, 3, s, s)``: resized to ``input_size`` when set, in [0, 1]
or standardised with ImageNet's mean and std (``normalize="imagenet"``: timm / torchvision /
DINOv2 weights expect it). Its output may be ``(B, E)``, tokens ``(B, N, E)`` or a map
``(B, C, h, w)``, or a tuple/list/dict whose first entry is one of those; ``pool`` turns tokens
or a map into one vector: ``mean`` (over tokens or positions), ``first`` (the first token: a
ViT's CLS), ``flatten`` (every token or position: patch features, ``N * E`` values).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from worldjepa.configs.model import check_module_path
from worldjepa.errors import ConfigError, WorldJepaError

if TYPE_CHECKING:
    from worldjepa.configs import EncoderConfig

__all__ = ["ExternalEncoder", "build_external", "load_encoder_weights", "trust_module"]

TRUST_VARIABLE = "WORLDJEPA_TRUST_MODULES"
_TRUSTED: set[str] = set()
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # mean, std


def trust_module(path: str) -> None:
    """Allow this process to import ``path`` (``"pkg.mod:build"``) and call it to build an encoder."""
    check_module_path(path)
    _TRUSTED.add(path)


def _resolve(path: str) -> Callable[..., nn.Module]:
    check_module_path(path)
    trusted = _TRUSTED | {p.strip() for p in os.environ.get(TRUST_VARIABLE, "").split(",") if p.strip()}
    if path not in trusted:
        raise WorldJepaError(f"this model's encoder is built by {path}, code outside worldjepa: it is imported only "
                             f"when trusted. Set {TRUST_VARIABLE}={path} (or call worldjepa.nn.trust_module({path!r}) "
                             "from Python) if you trust it")
    name, attr = path.split(":")
    try:
        obj: Any = importlib.import_module(name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise WorldJepaError(f"encoder module {path}: {e}") from None
    if not callable(obj):
        raise WorldJepaError(f"encoder module {path} is not callable")
    return obj


class ExternalEncoder(nn.Module):
    """An outside ``module`` as a worldjepa encoder: frames ``(B, 3, size, size)`` in [0, 1] ->
    ``(B, out_dim)``, ``out_dim`` measured with one blank frame at construction. A module whose
    parameters are all frozen stays in eval mode (its BatchNorm statistics, dropout) even while
    the world model around it trains."""

    def __init__(self, module: nn.Module, size: int, input_size: int = 0, normalize: str = "none",
                 pool: str = "mean") -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise WorldJepaError(f"the encoder module's builder returned a {type(module).__name__}, not a torch.nn.Module")
        if normalize not in ("none", "imagenet") or pool not in ("mean", "first", "flatten"):
            raise ConfigError(f"normalize must be none | imagenet and pool mean | first | flatten, got {normalize}, {pool}")
        self.module, self.size, self.input_size = module, size, input_size or size
        self.normalize, self.pool = normalize, pool
        mean, std = IMAGENET
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        was = module.training
        module.eval()
        with torch.no_grad():
            out = self._features(torch.zeros(1, 3, size, size))  # (1, E)
        module.train(was)
        if out.dim() != 2:
            raise WorldJepaError(f"the encoder module's output pooled to shape {tuple(out.shape)}, not (1, E)")
        self.out_dim = int(out.shape[1])

    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames
        if self.input_size != x.shape[-1]:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=self.input_size < x.shape[-1])  # (B, 3, s, s)
        if self.normalize == "imagenet":
            x = (x - self.mean.to(x)) / self.std.to(x)
        out = self.module(x)
        if isinstance(out, dict):
            out = next(iter(out.values()))
        elif isinstance(out, (tuple, list)):
            out = out[0]
        if out.dim() == 4:  # (B, C, h, w) -> tokens (B, h*w, C)
            out = out.flatten(2).transpose(1, 2)
        if out.dim() == 3:  # (B, N, E)
            out = {"mean": lambda t: t.mean(1), "first": lambda t: t[:, 0], "flatten": lambda t: t.flatten(1)}[
                self.pool](out)
        return out  # (B, E)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, 3, size, size)`` in [0, 1] -> ``(B, out_dim)``."""
        if self.module.training and not any(p.requires_grad for p in self.module.parameters()):
            self.module.eval()  # frozen: its own statistics and dropout stay as they were loaded
        return self._features(frames)


def build_external(cfg: EncoderConfig, size: int) -> ExternalEncoder:
    """The :class:`ExternalEncoder` an encoder config of kind ``module`` describes (its builder
    called with ``module_kwargs``; weights as it initialises them: see :func:`load_encoder_weights`)."""
    from worldjepa.config import parse_agent_options

    build = _resolve(cfg.module)
    kwargs = parse_agent_options(cfg.module_kwargs, "--encoder-kwargs")
    try:
        module = build(**kwargs)
    except TypeError as e:
        raise WorldJepaError(f"encoder module {cfg.module}({cfg.module_kwargs}): {e}") from None
    return ExternalEncoder(module, size, cfg.input_size, cfg.normalize, cfg.pool)


def load_encoder_weights(encoder: ExternalEncoder, path: str) -> None:
    """Load a safetensors state dict into the outside module (every key must match)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from worldjepa.utils import sniff

    if not os.path.isfile(path):
        raise WorldJepaError(f"--encoder-weights {path}: no such file")
    kind = sniff(path)
    if kind != "safetensors":
        raise WorldJepaError(f"--encoder-weights {path} is {'a pickle (torch.save) file' if kind == 'pickle' else kind}: "
                             "worldjepa reads only safetensors (never unpickles); convert it once with "
                             "safetensors.torch.save_file(torch.load(path, weights_only=True), 'weights.safetensors')")
    try:
        state = load_file(path)
    except SafetensorError as e:
        raise WorldJepaError(f"--encoder-weights {path}: {e}") from None
    try:
        missing, unexpected = encoder.module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shapes that differ
        raise WorldJepaError(f"--encoder-weights {path} does not fit the module: {str(e).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise WorldJepaError(f"--encoder-weights {path} does not fit the module: missing {', '.join(missing[:5]) or '-'}"
                             f"{' ...' if len(missing) > 5 else ''}; unexpected {', '.join(unexpected[:5]) or '-'}"
                             f"{' ...' if len(unexpected) > 5 else ''}")
