"""multi_view: shapes, range, determinism, geometry, and that each view is its own draw."""

import pytest
import torch

from worldjepa.augment import MultiViewConfig, multi_view
from worldjepa.errors import ConfigError, WorldJepaError

PLAIN = dict(jitter_p=0.0, blur_p=0.0, flip_p=0.0)


def _images(b=4, h=48, w=40):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(0))


def test_shapes_and_range():
    cfg = MultiViewConfig(n_global=2, n_local=3, global_size=24, local_size=12)
    out = multi_view(_images(), cfg, torch.Generator().manual_seed(1))
    assert out.global_views.shape == (2, 4, 3, 24, 24)
    assert out.local_views.shape == (3, 4, 3, 12, 12)
    for v in out:
        assert v.min() >= 0 and v.max() <= 1 and torch.isfinite(v).all()
    none = multi_view(_images(), MultiViewConfig(n_local=0, global_size=8), torch.Generator())
    assert none.local_views.shape[0] == 0


def test_seeded_generator_is_deterministic():
    cfg = MultiViewConfig(global_size=16, local_size=8)
    a = multi_view(_images(), cfg, torch.Generator().manual_seed(7))
    b = multi_view(_images(), cfg, torch.Generator().manual_seed(7))
    c = multi_view(_images(), cfg, torch.Generator().manual_seed(8))
    assert torch.equal(a.global_views, b.global_views) and torch.equal(a.local_views, b.local_views)
    assert not torch.equal(a.global_views, c.global_views)


def test_views_differ_from_each_other():
    cfg = MultiViewConfig(n_global=2, n_local=4, global_size=16, local_size=8)
    out = multi_view(_images(), cfg, torch.Generator().manual_seed(2))
    for views in out:
        v = views.shape[0]
        for i in range(v):
            for j in range(i + 1, v):
                assert (views[i] - views[j]).abs().mean() > 1e-3  # two views of the same images
        assert (views[:, 0] - views[:, 1]).abs().mean() > 1e-3  # two images, same view index


def test_full_crop_is_identity_and_flip_mirrors():
    img = _images(b=2, h=20, w=20)
    cfg = MultiViewConfig(n_global=1, n_local=0, global_size=20, global_scale=(1.0, 1.0),
                          ratio=(1.0, 1.0), **PLAIN)
    out = multi_view(img, cfg, torch.Generator().manual_seed(0)).global_views[0]
    torch.testing.assert_close(out, img, atol=1e-5, rtol=0)
    flip = MultiViewConfig(n_global=1, n_local=0, global_size=20, global_scale=(1.0, 1.0),
                           ratio=(1.0, 1.0), jitter_p=0.0, blur_p=0.0, flip_p=1.0)
    out = multi_view(img, flip, torch.Generator().manual_seed(0)).global_views[0]
    torch.testing.assert_close(out, img.flip(-1), atol=1e-5, rtol=0)


def test_crop_area_follows_scale():
    # a left-right ramp: a crop's horizontal spread of values = its width fraction
    ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64).contiguous()
    cfg = MultiViewConfig(n_global=8, n_local=0, global_size=32, global_scale=(0.09, 0.09),
                          ratio=(1.0, 1.0), **PLAIN)
    out = multi_view(ramp, cfg, torch.Generator().manual_seed(3)).global_views  # (8, 1, 3, 32, 32)
    spread = out[..., 0, -1] - out[..., 0, 0]  # (8, 1, 3) right edge minus left edge
    # width fraction 0.3 of the image; the outermost pixel centres span 0.3 * 31/32
    torch.testing.assert_close(spread, torch.full_like(spread, 0.3 * 31 / 32), atol=0.02, rtol=0)


def test_jitter_and_blur_change_pixels():
    img = _images(b=8, h=32, w=32)
    geom = dict(n_global=1, n_local=0, global_size=32, global_scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0)
    plain = multi_view(img, MultiViewConfig(**geom, jitter_p=0.0, blur_p=0.0), torch.Generator()).global_views[0]
    blur = multi_view(img, MultiViewConfig(**geom, jitter_p=0.0, blur_p=1.0, blur_sigma=(1.5, 2.0)),
                      torch.Generator().manual_seed(0)).global_views[0]
    jit = multi_view(img, MultiViewConfig(**geom, jitter_p=1.0, blur_p=0.0),
                     torch.Generator().manual_seed(0)).global_views[0]
    # blur removes high frequencies: neighbour differences shrink a lot on white noise
    assert (blur.diff(dim=-1).abs().mean()) < 0.5 * plain.diff(dim=-1).abs().mean()
    per_image_change = (jit - plain).abs().mean(dim=(1, 2, 3))  # (8,)
    assert (per_image_change > 1e-3).all()


def test_shift_moves_views_by_at_most_max_shift_pixels_and_noise_adds_noise():
    # a left-right ramp of one step per pixel: a shift of d pixels adds d steps everywhere
    side = 32
    ramp = torch.arange(side, dtype=torch.float32).div(side).expand(1, 3, side, side).contiguous()
    geom = dict(n_global=16, n_local=0, global_size=side, global_scale=(1.0, 1.0), ratio=(1.0, 1.0), **PLAIN)
    out = multi_view(ramp, MultiViewConfig(**geom, max_shift=2.0),
                     torch.Generator().manual_seed(0)).global_views  # (16, 1, 3, s, s)
    centre = out[..., side // 2 - 4:side // 2 + 4] - ramp[..., side // 2 - 4:side // 2 + 4]  # away from the edges
    d = centre.mean(dim=(1, 2, 3, 4)) * side  # (16,) shift in pixels
    assert d.abs().max() <= 2.0 + 1e-4 and d.abs().max() > 0.5 and d.std() > 0.3
    noisy = multi_view(ramp, MultiViewConfig(**geom, noise_std=0.05), torch.Generator().manual_seed(0)).global_views
    assert 0.02 < (noisy - ramp).std() < 0.06 and noisy.min() >= 0 and noisy.max() <= 1
    with pytest.raises(ConfigError):
        MultiViewConfig(max_shift=-1.0)


def test_bad_input():
    with pytest.raises(WorldJepaError):
        multi_view(torch.rand(2, 1, 8, 8))
    with pytest.raises(WorldJepaError):
        multi_view(torch.randint(0, 255, (2, 3, 8, 8), dtype=torch.uint8))
    with pytest.raises(ConfigError):
        MultiViewConfig(global_scale=(0.5, 1.5))
