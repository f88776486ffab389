"""Multi-view augmentation for LeJEPA, batched on the images' device (no per-image loop).

Every view of every image gets its own random resized crop (with optional horizontal flip),
done by one ``F.grid_sample`` call per view size with per-sample affine grids (plus an optional
translation of at most ``max_shift`` pixels); then colour jitter (brightness, contrast,
saturation, in that fixed order), a gaussian blur with a per-sample sigma, as grouped
convolutions, and optional additive gaussian noise (``noise_std``). All randomness comes from one ``torch.Generator``
(drawn on the generator's device, then moved), so a seeded generator gives identical views.

A batch may be one rank's part of a global batch (``part``: its rows and the global size):
every random draw is then made for the global batch and the part's columns kept, so the views
of each image are those one process drawing the whole batch makes, whatever the split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from worldjepa.errors import ConfigError, WorldJepaError

__all__ = ["MultiViewConfig", "MultiViews", "multi_view"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 grey, as torchvision uses


@dataclass(frozen=True)
class MultiViewConfig:
    """Settings of :func:`multi_view`."""

    n_global: int = 2
    """Number of global views per image."""
    n_local: int = 6
    """Number of local views per image (0 for none)."""
    global_size: int = 64
    """Side of a global view, pixels."""
    local_size: int = 32
    """Side of a local view, pixels."""
    global_scale: tuple[float, float] = (0.3, 1.0)
    """Range of a global crop's area, as a fraction of the image's area."""
    local_scale: tuple[float, float] = (0.05, 0.3)
    """Range of a local crop's area, as a fraction of the image's area."""
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    """Range of a crop's aspect ratio (width / height), sampled log-uniformly."""
    flip_p: float = 0.5
    """Probability of a horizontal flip."""
    jitter_p: float = 0.8
    """Probability that a view gets colour jitter."""
    brightness: float = 0.4
    """Brightness factor drawn from [1 - b, 1 + b]."""
    contrast: float = 0.4
    """Contrast factor drawn from [1 - c, 1 + c]."""
    saturation: float = 0.4
    """Saturation factor drawn from [1 - s, 1 + s]."""
    blur_p: float = 0.5
    """Probability that a view is blurred."""
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    """Range of the blur's sigma, in pixels of the global view (scaled for local views)."""
    max_shift: float = 0.0
    """Largest extra translation of a view, in pixels of the input image, per axis (uniform)."""
    noise_std: float = 0.0
    """Std of additive gaussian pixel noise on every view (0 for none), images in [0, 1]."""

    def __post_init__(self) -> None:
        if self.n_global < 1 or self.n_local < 0:
            raise ConfigError(f"need n_global >= 1 and n_local >= 0, got {self.n_global}, {self.n_local}")
        if self.global_size < 1 or self.local_size < 1:
            raise ConfigError("view sizes must be positive")
        for name in ("global_scale", "local_scale", "ratio", "blur_sigma"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
        if self.global_scale[1] > 1 or self.local_scale[1] > 1:
            raise ConfigError("crop scales must be <= 1")
        for name in ("flip_p", "jitter_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in [0, 1]")
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1)")
        if self.max_shift < 0 or self.noise_std < 0:
            raise ConfigError("max_shift and noise_std must be >= 0")


class MultiViews(NamedTuple):
    """Global views (V_g, B, 3, h_g, w_g) and local views (V_l, B, 3, h_l, w_l), in [0, 1]."""

    global_views: Tensor
    local_views: Tensor


class _Draws:
    """The random draws of one batch of ``b`` images, or of a part of a larger batch: ``part =
    (rows, total)`` draws for all ``total`` images and keeps the columns ``rows`` ``(b,)``."""

    def __init__(self, g: torch.Generator | None, b: int, part: tuple[Tensor, int] | None) -> None:
        self.g = g
        self.gen_dev = g.device if g is not None else torch.device("cpu")
        self.rows, self.total = (None, b) if part is None else (part[0].to(self.gen_dev), int(part[1]))

    def _keep(self, x: Tensor, device: torch.device) -> Tensor:
        return (x if self.rows is None else x[:, self.rows]).to(device)

    def uniform(self, views: int, lo: float, hi: float, device: torch.device) -> Tensor:
        """``(views, b)`` uniform in [lo, hi)."""
        return self._keep(torch.rand((views, self.total), generator=self.g, device=self.gen_dev) * (hi - lo) + lo,
                          device)

    def normal(self, views: int, rest: tuple[int, ...], device: torch.device) -> Tensor:
        """``(views, b, *rest)`` standard normal."""
        return self._keep(torch.randn((views, self.total, *rest), generator=self.g, device=self.gen_dev), device)


def _crops(images: Tensor, views: int, size: int, scale: tuple[float, float],
           cfg: MultiViewConfig, r: _Draws) -> Tensor:
    """Random resized crops with flips: (B, 3, H, W) -> (V, B, 3, size, size)."""
    b = images.shape[0]
    dev = images.device
    area = r.uniform(views, *scale, dev)  # (V, B) fraction of the image area
    log_r = r.uniform(views, math.log(cfg.ratio[0]), math.log(cfg.ratio[1]), dev)
    w = torch.sqrt(area * log_r.exp()).clamp(max=1.0)  # (V, B) width fraction
    h = torch.sqrt(area / log_r.exp()).clamp(max=1.0)  # (V, B) height fraction
    cx = r.uniform(views, -1, 1, dev) * (1 - w)  # (V, B) centre in [-1, 1] coords
    cy = r.uniform(views, -1, 1, dev) * (1 - h)  # (V, B)
    if cfg.max_shift > 0:  # a pixel of the input is 2 / side in [-1, 1] coordinates
        cx = cx + r.uniform(views, -cfg.max_shift, cfg.max_shift, dev) * 2 / images.shape[-1]
        cy = cy + r.uniform(views, -cfg.max_shift, cfg.max_shift, dev) * 2 / images.shape[-2]
    flip = torch.where(r.uniform(views, 0, 1, dev) < cfg.flip_p, -1.0, 1.0)  # (V, B)
    theta = torch.zeros(views, b, 2, 3, device=dev, dtype=images.dtype)  # (V, B, 2, 3)
    theta[..., 0, 0] = w * flip
    theta[..., 0, 2] = cx
    theta[..., 1, 1] = h
    theta[..., 1, 2] = cy
    grid = F.affine_grid(theta.reshape(views * b, 2, 3), [views * b, 3, size, size],
                         align_corners=False)  # (V*B, size, size, 2)
    # all views of image i sampled in one call: stack their grids along the height axis
    grid = grid.reshape(views, b, size, size, 2).permute(1, 0, 2, 3, 4)  # (B, V, s, s, 2)
    out = F.grid_sample(images, grid.reshape(b, views * size, size, 2), mode="bilinear",
                        padding_mode="reflection", align_corners=False)  # (B, 3, V*s, s)
    return out.reshape(b, 3, views, size, size).permute(2, 0, 1, 3, 4)  # (V, B, 3, s, s)


def _grey(x: Tensor) -> Tensor:
    """(M, 3, h, w) -> (M, 1, h, w) luma."""
    return _LUMA[0] * x[:, 0:1] + _LUMA[1] * x[:, 1:2] + _LUMA[2] * x[:, 2:3]


def _jitter(x: Tensor, views: int, cfg: MultiViewConfig, r: _Draws) -> Tensor:
    """Brightness, contrast, saturation with per-view factors: (M = V*B, 3, h, w) -> same."""
    m, dev = x.shape[0], x.device
    on = r.uniform(views, 0, 1, dev).reshape(m, 1, 1, 1) < cfg.jitter_p  # (M, 1, 1, 1)

    def factor(amount: float) -> Tensor:
        f = r.uniform(views, 1 - amount, 1 + amount, dev).reshape(m, 1, 1, 1)  # (M, 1, 1, 1)
        return torch.where(on, f, torch.ones_like(f)).to(x.dtype)

    bright, contrast, sat = factor(cfg.brightness), factor(cfg.contrast), factor(cfg.saturation)
    x = (x * bright).clamp(0, 1)
    mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)  # (M, 1, 1, 1)
    x = ((x - mean) * contrast + mean).clamp(0, 1)
    grey = _grey(x)  # (M, 1, h, w)
    return ((x - grey) * sat + grey).clamp(0, 1)


def _blur(x: Tensor, views: int, sigma_range: tuple[float, float], p: float, r: _Draws) -> Tensor:
    """Separable gaussian blur, per-view sigma, identity when not drawn: (M = V*B, 3, h, w)."""
    m, c, hgt, wid = x.shape
    dev = x.device
    on = r.uniform(views, 0, 1, dev).reshape(m) < p  # (M,)
    sigma = r.uniform(views, *sigma_range, dev).reshape(m)  # (M,)
    radius = max(1, min(math.ceil(3 * sigma_range[1]), (min(hgt, wid) - 1) // 2))
    offs = torch.arange(-radius, radius + 1, device=dev, dtype=x.dtype)  # (k,)
    kern = torch.exp(-0.5 * (offs / sigma[:, None].to(x.dtype)) ** 2)  # (M, k)
    kern = kern / kern.sum(dim=1, keepdim=True)
    delta = (offs == 0).to(x.dtype).expand_as(kern)  # (M, k) identity kernel
    kern = torch.where(on[:, None], kern, delta)  # (M, k)
    kern = kern.repeat_interleave(c, dim=0)  # (M*3, k), one per channel
    y = x.reshape(1, m * c, hgt, wid)  # (1, M*3, h, w) grouped conv: one kernel per channel
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), kern[:, None, None, :],
                 groups=m * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), kern[:, None, :, None],
                 groups=m * c)
    return y.reshape(m, c, hgt, wid)


def _finish(views: Tensor, cfg: MultiViewConfig, sigma: tuple[float, float], r: _Draws) -> Tensor:
    v, b = views.shape[:2]
    flat = views.reshape(v * b, *views.shape[2:])  # (V*B, 3, s, s)
    flat = _blur(_jitter(flat, v, cfg, r), v, sigma, cfg.blur_p, r)
    if cfg.noise_std > 0:
        noise = r.normal(v, tuple(flat.shape[1:]), flat.device).to(flat.dtype)  # (V, B, 3, s, s)
        flat = flat + cfg.noise_std * noise.reshape(flat.shape)  # (V*B, 3, s, s)
    return flat.clamp(0, 1).reshape(views.shape)  # (V, B, 3, s, s)


def multi_view(images: Tensor, cfg: MultiViewConfig | None = None,
               generator: torch.Generator | None = None, part: tuple[Tensor, int] | None = None) -> MultiViews:
    """Global and local views of each image, every view with its own random draw.

    Args:
        images: (B, 3, H, W) float in [0, 1], on any device.
        cfg: settings; ``MultiViewConfig()`` by default (2 x 64 px global views at
            scale 0.3-1, 6 x 32 px local views at scale 0.05-0.3).
        generator: seeded ``torch.Generator`` for reproducible views (on the CPU or on the
            images' device); ``None`` uses torch's global RNG.
        part: ``(rows (B,), total)`` when ``images`` are the rows ``rows`` of a batch of
            ``total`` images (a rank's share): the random draws are made for all ``total``
            and these rows' kept, so they equal the views of those rows in the whole batch.

    Returns:
        ``MultiViews(global_views (V_g, B, 3, g, g), local_views (V_l, B, 3, l, l))`` in
        [0, 1], on the images' device. ``local_views`` has V_l = 0 when ``n_local = 0``.
    """
    cfg = cfg or MultiViewConfig()
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise WorldJepaError(f"multi_view expects float images (B, 3, H, W), got "
                             f"{tuple(images.shape)} {images.dtype}")
    r = _Draws(generator, images.shape[0], part)
    glob = _crops(images, cfg.n_global, cfg.global_size, cfg.global_scale, cfg, r)
    glob = _finish(glob, cfg, cfg.blur_sigma, r)  # (V_g, B, 3, g, g)
    if cfg.n_local == 0:
        loc = images.new_zeros(0, images.shape[0], 3, cfg.local_size, cfg.local_size)
    else:
        k = cfg.local_size / cfg.global_size  # blur in the same image-relative units
        loc = _crops(images, cfg.n_local, cfg.local_size, cfg.local_scale, cfg, r)
        loc = _finish(loc, cfg, (cfg.blur_sigma[0] * k, cfg.blur_sigma[1] * k), r)
    return MultiViews(glob, loc)
