"""The model's options: the image encoder and the world model around it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..config import at_least, opt, section_from_str
from ..errors import ConfigError


def parse_proprio(spec: str) -> tuple[str, slice]:
    """``'state[2:4]'`` -> ``("state", slice(2, 4))``; ``'obs'`` -> ``("obs", slice(None))``."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w/]*)\s*(?:\[\s*(-?\d*)\s*:\s*(-?\d*)\s*\])?\s*", spec)
    if not m:
        raise ConfigError(f"proprio {spec!r}: expected an extras name and optional slice, e.g. 'state[2:4]' or 'obs'")
    lo, hi = m.group(2), m.group(3)
    return m.group(1), slice(int(lo) if lo else None, int(hi) if hi else None)



def check_module_path(path: str) -> None:
    """A ConfigError unless ``path`` reads ``pkg.mod:callable`` (an import path and a name in it)."""
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", path):
        raise ConfigError(f"encoder module {path!r}: expected an import path and a callable, 'pkg.mod:build'")


@dataclass(frozen=True)
class EncoderConfig:
    """The image encoder, shared by world models (``train``) and LeJEPA pretraining."""

    kind: Literal["cnn", "vit_tiny", "module"] = opt(
        "cnn", "encoder: cnn (CPU default) | vit_tiny | module (built by --encoder-module)", flag="encoder")
    dim: int = opt(256, "encoder output size (before the projector)", flag="encoder-dim")
    channels: tuple[int, ...] = opt((8, 16, 32, 64), "CNN channels, one stride-2 conv per entry (cnn only)",
                                    flag="channels")
    keypoints: int = opt(0, "CNN spatial-softmax keypoints K: the last 2K encoder outputs are K expected (x, y) "
                            "positions of learned heatmaps", flag="keypoints")
    patch: int = opt(8, "ViT patch size in pixels (vit_tiny only)", flag="patch")
    module: str = opt("", "an encoder from outside: 'pkg.mod:build', a callable returning a torch.nn.Module "
                          "(e.g. timm:create_model, torchvision.models:resnet18, your own); sets --encoder module. "
                          "The checkpoint records it; other commands import it only when trusted "
                          "(WORLDJEPA_TRUST_MODULES=pkg.mod:build)", flag="encoder-module")
    module_kwargs: str = opt("", "keyword arguments of the --encoder-module callable, 'k=v ...' (e.g. "
                                 "'model_name=vit_small_patch14_dinov2 num_classes=0')", flag="encoder-kwargs")
    weights: str = opt("", "a safetensors state dict loaded into the --encoder-module model before training (the "
                           "checkpoint then holds the weights); '' = as the callable initialises it",
                       flag="encoder-weights")
    pool: Literal["mean", "first", "flatten"] = opt(
        "mean", "a --encoder-module output of tokens (B, N, E) or a map (B, C, h, w) as one vector: mean | first "
                "(a ViT's CLS token) | flatten (patch features: N x E values)", flag="encoder-pool")
    input_size: int = opt(0, "--encoder-module: frames resized to this side first (0 = the frame size; e.g. 224)",
                          flag="encoder-input-size")
    normalize: Literal["none", "imagenet"] = opt("none", "--encoder-module input: pixels in [0, 1] (none) or "
                                                         "standardised with ImageNet's mean and std (timm, "
                                                         "torchvision and DINOv2 weights)", flag="encoder-normalize")

    @classmethod
    def from_str(cls, text: str) -> dict[str, Any]:
        """``"cnn"`` -> ``{"kind": "cnn"}`` (configs written before the encoder had its own section)."""
        return {"kind": text}

    def __post_init__(self) -> None:
        if self.module and self.kind == "cnn":  # --encoder-module alone says which encoder
            object.__setattr__(self, "kind", "module")
        if self.kind == "module":
            if not self.module:
                raise ConfigError("--encoder module needs --encoder-module pkg.mod:build")
            check_module_path(self.module)
        elif self.module or self.weights:
            raise ConfigError(f"--encoder-module and --encoder-weights go with --encoder module, not {self.kind}")
        at_least(self, 1, "dim", "patch")
        at_least(self, 0, "keypoints", "input_size")
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"channels must be a non-empty list of sizes >= 1, got {self.channels}")
        if self.keypoints and self.kind != "cnn":
            raise ConfigError(f"keypoints are an option of the cnn encoder, not {self.kind}")


# Sizes of the transformer predictor (keyword arguments of worldjepa.nn.TransformerPredictor
# besides dim / action_dim). lewm follows LeWM's released config: 6 blocks of width 192, 16
# heads of 64, MLP 2048.
TRANSFORMER_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(depth=2, width=32, heads=2, history=3, mlp_ratio=2.0, dropout=0.0),
    "small": dict(depth=4, width=128, heads=4, history=3, mlp_ratio=4.0, dropout=0.1),
    "lewm": dict(depth=6, width=192, heads=16, head_dim=64, mlp_dim=2048, history=3, dropout=0.1),
}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and objective of a world model (saved in every checkpoint)."""

    __aliases__: ClassVar[dict[str, str]] = {
        "encoder_dim": "encoder.dim", "channels": "encoder.channels", "keypoints": "encoder.keypoints",
        "patch": "encoder.patch", "regulariser": "regularizer"}

    encoder: EncoderConfig = opt(EncoderConfig(), "the image encoder")
    latent_dim: int = opt(64, "latent size D (projector output; what the planner compares)")
    projector_hidden: int = opt(512, "projector hidden width (BatchNorm MLP)")
    projector_layers: int = opt(2, "projector linear layers; 0 = no projector: the latent is the encoder's "
                                   "output, each dimension standardised (latent_dim is then the encoder's dim), as "
                                   "DINO-WM plans on frozen DINOv2 features; meant for --freeze-encoder")
    predictor: Literal["mlp", "transformer", "gru"] = opt("mlp", "predictor: mlp | transformer | gru")
    preset: str = opt("", "transformer size preset: tiny | small | lewm (transformer only)")
    predictor_hidden: int = opt(128, "hidden width of the mlp / gru predictor")
    predictor_layers: int = opt(3, "linear layers of the mlp predictor (>= 2)")
    history: int = opt(3, "model steps of context: the transformer's attention window and the "
                          "agent's memory of observed embeddings")
    frameskip: int = opt(5, "env steps per model step; the predictor sees frameskip x A actions")
    regularizer: Literal["sigreg", "vicreg", "none"] = opt(
        "sigreg", "anti-collapse term: sigreg | vicreg | none (none = the collapse ablation)")
    reg_weight: float = opt(0.1, "weight lambda of the regulariser")
    sigreg_slices: int = opt(512, "random 1-D projections per SIGReg step")
    rollout_weight: float = opt(1.0, "weight of the open-loop rollout MSE (0 = teacher-forced only)")
    inverse_weight: float = opt(0.0, "weight of a PLDM-style inverse-dynamics term: an MLP predicts the "
                                     "macro action from (z_t, z_t+1); 0 = off (PLDM variant: "
                                     "regularizer=vicreg inverse_weight=1)")
    proprio: str = opt("", "proprioceptive input: a dataset extra and optional slice, e.g. 'state[2:4]' "
                           "(PointMaze's velocity) or 'obs'; embedded and appended to the latent. "
                           "'' = pixels only")
    proprio_emb: int = opt(16, "size of the proprioceptive embedding appended to the latent")
    freeze_encoder: bool = opt(False, "keep the encoder's weights fixed in training (with --encoder-init: a frozen "
                                      "pretrained encoder, as DINO-WM freezes DINOv2); projector and predictor learn")
    action_free: bool = opt(False, "learn from video without actions: the predictor sees zeros for every action and "
                                   "its action input weights stay zero, so the model forecasts what happens next "
                                   "and can later be fine-tuned with actions (--init-from) starting from itself")
    proprio_dim: int = opt(0, "proprioceptive values per frame (filled from the dataset)", cli=False)
    frame_size: int = opt(0, "frame side in pixels (filled from the dataset)", cli=False)
    action_dim: int = opt(0, "env action size A (filled from the dataset's action space)", cli=False)

    def __post_init__(self) -> None:
        section_from_str(self, "encoder", EncoderConfig)
        at_least(self, 1, "latent_dim", "history", "frameskip", "projector_hidden", "predictor_hidden",
                  "sigreg_slices")
        at_least(self, 0, "projector_layers", "reg_weight", "rollout_weight", "inverse_weight")
        if self.predictor == "mlp" and self.predictor_layers < 2:
            raise ConfigError(f"predictor_layers must be >= 2 for the mlp predictor, got {self.predictor_layers}")
        at_least(self, 1, "proprio_emb")
        if self.action_free and self.inverse_weight > 0:
            raise ConfigError("inverse_weight > 0 predicts actions: it cannot be used with action_free")
        if self.proprio:
            parse_proprio(self.proprio)  # a clear error now, not at the first batch
        if self.preset and self.predictor != "transformer":
            raise ConfigError(f"preset {self.preset!r} sizes the transformer predictor, not {self.predictor!r}")
        if self.preset and self.preset not in TRANSFORMER_SIZES:
            raise ConfigError(f"unknown transformer preset {self.preset!r}; choose {' | '.join(TRANSFORMER_SIZES)}")

