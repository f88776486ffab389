"""Predictors (world models in embedding space), their registry and size presets.

Every predictor obeys one contract (``worldjepa.protocols.Predictor``):

* ``forward(z (B, T, D), a (B, T, A)) -> (B, T, D)``: output ``t`` predicts ``z[t + 1]`` from
  ``z[: t + 1]`` and ``a[: t + 1]`` (teacher-forced, causal);
* ``rollout(z_hist (B, Th, D), a_hist (B, Th - 1, A), actions (B, S, H, A)) -> (B, S, H, D)``:
  autoregressive imagination; the history is run once per batch row and shared by all
  ``S`` samples.

Each also names the weights that read the raw action (``action_input()``): zeroed, the
predictor's output no longer depends on the actions. An action-free world model keeps them at
zero (``worldjepa train --action-free``), so the same weights fine-tuned with actions start
exactly where the action-free model was and learn the action pathway from zero.

``MLPPredictor`` and ``GRUPredictor`` predict a residual (``z[t] + delta``, the delta's last
layer zero-initialised so both start as "nothing moves"); ``TransformerPredictor`` predicts
the next embedding directly (LeWM).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from worldjepa.configs import TRANSFORMER_SIZES
from worldjepa.errors import ConfigError
from worldjepa.nn._checks import check_rollout, check_shape, init_weights
from worldjepa.nn.transformer import TransformerPredictor


class MLPPredictor(nn.Module):
    """Markov residual MLP: ``z[t + 1] = z[t] + MLP([z[t], a[t]])``.

    ``layers`` linear layers of width ``hidden`` (LayerNorm + GELU between them). Uses only
    the last embedding, so ``rollout`` ignores all but ``z_hist[:, -1]``.
    """

    def __init__(self, dim: int, action_dim: int, hidden: int = 512, layers: int = 3):
        super().__init__()
        if layers < 2:
            raise ValueError(f"MLPPredictor needs layers >= 2, got {layers}")
        self.dim, self.action_dim = dim, action_dim
        # the first layer is split in a z part and an a part so rollout can share the z part
        self.z_in = nn.Linear(dim, hidden)
        self.a_in = nn.Linear(action_dim, hidden, bias=False)
        mods: list[nn.Module] = []
        for _ in range(layers - 2):
            mods += [nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, hidden)]
        mods += [nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, dim)]
        self.body = nn.Sequential(*mods)
        init_weights(self)
        nn.init.zeros_(self.body[-1].weight)  # start as the identity map z -> z
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """z ``(B, T, D)``, a ``(B, T, A)`` -> ``(B, T, D)``."""
        check_shape("z", z, ("B", "T", self.dim))
        check_shape("a", a, (z.shape[0], z.shape[1], self.action_dim))
        return z + self.body(self.z_in(z) + self.a_in(a))  # (B, T, D)

    def action_input(self) -> list[torch.Tensor]:
        """The weights that read the raw action: ``a_in``'s ``(hidden, A)``."""
        return [self.a_in.weight]

    def rollout(
        self, z_hist: torch.Tensor, a_hist: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``(B, Th, D)``, ``(B, Th-1, A)``, ``(B, S, H, A)`` -> ``(B, S, H, D)``."""
        _, _, _, horizon = check_rollout(z_hist, a_hist, actions, self.dim, self.action_dim)
        ha = self.a_in(actions)  # (B, S, H, hidden), all steps at once
        z = z_hist[:, -1:]  # (B, 1, D), broadcast over S at the first step
        hz = self.z_in(z)  # (B, 1, hidden), computed once for all samples
        out = []
        for step in range(horizon):
            z = z + self.body(hz + ha[:, :, step])  # (B, S, D)
            out.append(z)
            if step + 1 < horizon:
                hz = self.z_in(z)  # (B, S, hidden)
        return torch.stack(out, dim=2)  # (B, S, H, D)


class GRUPredictor(nn.Module):
    """Recurrent residual predictor: ``h[t] = GRU([z[t], a[t]], h[t-1])``,
    ``z[t + 1] = z[t] + Linear(h[t])``.

    ``rollout`` runs the GRU over the history once per batch row and carries the hidden
    state, broadcast over ``S``, through the imagined steps.
    """

    def __init__(self, dim: int, action_dim: int, hidden: int = 256, layers: int = 1):
        super().__init__()
        self.dim, self.action_dim, self.hidden = dim, action_dim, hidden
        self.gru = nn.GRU(dim + action_dim, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, dim)
        init_weights(self)
        nn.init.zeros_(self.head.weight)  # start as the identity map z -> z
        nn.init.zeros_(self.head.bias)

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """z ``(B, T, D)``, a ``(B, T, A)`` -> ``(B, T, D)``."""
        check_shape("z", z, ("B", "T", self.dim))
        check_shape("a", a, (z.shape[0], z.shape[1], self.action_dim))
        h, _ = self.gru(torch.cat((z, a), dim=-1))  # (B, T, hidden)
        return z + self.head(h)  # (B, T, D)

    def action_input(self) -> list[torch.Tensor]:
        """The weights that read the raw action: the action columns of the first GRU layer's
        input weights, a ``(3 * hidden, A)`` view."""
        return [self.gru.weight_ih_l0[:, self.dim:]]

    def rollout(
        self, z_hist: torch.Tensor, a_hist: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``(B, Th, D)``, ``(B, Th-1, A)``, ``(B, S, H, A)`` -> ``(B, S, H, D)``."""
        b, th, s, horizon = check_rollout(z_hist, a_hist, actions, self.dim, self.action_dim)
        layers = self.gru.num_layers
        if th > 1:
            _, h = self.gru(torch.cat((z_hist[:, :-1], a_hist), dim=-1))  # (L, B, hidden)
        else:
            h = z_hist.new_zeros(layers, b, self.hidden)  # (L, B, hidden)
        # the GRU kernel needs a dense state: one small copy of the state, not of the history
        h = h[:, :, None].expand(layers, b, s, self.hidden).reshape(layers, b * s, -1)
        z = z_hist[:, -1:].expand(b, s, self.dim).reshape(b * s, 1, self.dim)  # (B*S, 1, D)
        acts = actions.reshape(b * s, horizon, self.action_dim)  # (B*S, H, A)
        out = []
        for step in range(horizon):
            y, h = self.gru(torch.cat((z, acts[:, step : step + 1]), dim=-1), h)  # (B*S, 1, hid)
            z = z + self.head(y)  # (B*S, 1, D)
            out.append(z)
        return torch.cat(out, dim=1).view(b, s, horizon, self.dim)  # (B, S, H, D)


PREDICTORS: dict[str, type[nn.Module]] = {
    "transformer": TransformerPredictor,
    "mlp": MLPPredictor,
    "gru": GRUPredictor,
}

PRESETS = TRANSFORMER_SIZES  # the transformer sizes, kept in worldjepa.configs


def build_predictor(name: str, *, preset: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered predictor, e.g. ``build_predictor("transformer", dim=64,
    action_dim=2, preset="small")``. ``preset`` (transformer only) fills sizes from
    :data:`PRESETS`; explicit ``kwargs`` override it."""
    if name not in PREDICTORS:
        raise ConfigError(f"unknown predictor {name!r}; valid: {', '.join(sorted(PREDICTORS))}")
    if preset is not None:
        if name != "transformer":
            raise ConfigError(f"presets size the transformer predictor, not {name!r}")
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        kwargs = {**PRESETS[preset], **kwargs}
    return PREDICTORS[name](**kwargs)
