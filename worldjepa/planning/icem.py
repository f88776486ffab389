"""iCEM: CEM with coloured noise, elite reuse, a shrinking population and the mean as a sample."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .cem import CEM


def colored_noise(shape: tuple[int, ...], beta: float, generator: torch.Generator,
                  device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """Unit-variance Gaussian noise ``(..., H, A)`` with power spectrum ``~ 1 / f^beta`` along H.

    ``beta = 0`` is white noise; larger ``beta`` gives smoother sequences (2 = Brownian-like).
    """
    *lead, H, A = shape
    white = torch.randn((*lead, A, H), generator=generator, device=device,
                        dtype=dtype)  # (..., A, H)
    if beta == 0 or H < 2:
        return white.transpose(-1, -2)  # (..., H, A)
    f = torch.fft.rfftfreq(H, device=device, dtype=dtype)  # (F,)
    f[0] = f[1]  # the constant component gets the weight of the lowest frequency
    scale = f.pow(-beta / 2)  # (F,)
    # Parseval: each rfft bin counts twice in the full spectrum, except DC and Nyquist.
    mult = torch.full_like(scale, 2.0)
    mult[0] = 1.0
    if H % 2 == 0:
        mult[-1] = 1.0
    scale = scale / torch.sqrt((mult * scale**2).sum() / H)  # unit variance per step
    spec = torch.fft.rfft(white, dim=-1, norm="ortho") * scale  # (..., A, F)
    return torch.fft.irfft(spec, n=H, dim=-1, norm="ortho").transpose(-1, -2)  # (..., H, A)


class ICEM(CEM):
    """Improved CEM (Pinneri et al., 2020).

    Update rule: as :class:`~worldjepa.planning.cem.CEM` (with ``momentum``), but samples use
    coloured noise of exponent ``beta`` along the horizon; a fraction ``keep_elites`` of the
    previous iteration's elites rejoins the population; the population shrinks by ``shrink``
    per iteration (never below ``2 * elites``); the current mean is one of the samples.

    Args:
        beta: colour of the noise (0 white, 2 smooth).
        keep_elites: fraction of the elites carried into the next iteration.
        shrink: population decay factor per iteration (1 = constant).
        include_mean: add the current mean as a candidate.
        momentum: as in CEM; iCEM's paper uses 0.1.
        **kwargs: the shared arguments of :class:`~worldjepa.planning.base.BasePlanner`.
    """

    def __init__(self, *, beta: float = 2.0, keep_elites: float = 0.3, shrink: float = 1.0,
                 include_mean: bool = True, momentum: float = 0.1, **kwargs: Any) -> None:
        super().__init__(momentum=momentum, **kwargs)
        if beta < 0 or not 0.0 <= keep_elites <= 1.0 or shrink < 1.0:
            raise ValueError(f"need beta >= 0, keep_elites in [0, 1], shrink >= 1; got {beta}, "
                             f"{keep_elites}, {shrink}")
        self.beta, self.keep_elites, self.shrink = beta, keep_elites, shrink
        self.include_mean = include_mean

    def _population(self, it: int) -> int:
        return max(2 * self.elites, int(self.samples * self.shrink ** (-it)))

    def _propose(self, state: dict[str, Any], it: int) -> Tensor:
        mean, std = state["mean"], state["std"]  # (B, H, A) each
        B, H, A = mean.shape
        noise = colored_noise((B, self._population(it), H, A), self.beta, self._gen,
                              mean.device, mean.dtype)  # (B, N, H, A)
        parts = [self.clip(mean.unsqueeze(1) + std.unsqueeze(1) * noise)]  # (B, N, H, A)
        if state.get("kept") is not None:
            parts.append(state["kept"])  # (B, k, H, A)
        if self.include_mean:
            parts.append(self.clip(mean).unsqueeze(1))  # (B, 1, H, A)
        return torch.cat(parts, dim=1)  # (B, S', H, A)

    def _update(self, state: dict[str, Any], actions: Tensor, cost: Tensor,
                it: int) -> dict[str, Any]:
        elites, _ = self.select_elites(actions, cost, min(self.elites, actions.shape[1]))
        n_keep = int(round(self.keep_elites * elites.shape[1]))
        new = self._refit(state, elites)  # elites: (B, K, H, A)
        new["kept"] = elites[:, :n_keep] if n_keep > 0 else None  # (B, k, H, A), best first
        return new
