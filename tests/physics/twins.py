"""Checks shared by the scene tests: the pairs of one kind, the twins' common rules, a tiny proprioceptive model."""

import numpy as np

from worldjepa.physics.scenes import roll


def of(pairs, kind):
    """The pairs of violation ``kind``."""
    return [p for p in pairs if p.kind == kind]


def check_twins(scene, pairs, per_kind):
    """``per_kind`` pairs of every kind ``scene`` shows; the twins are the same frames before the
    event and differ at it; the possible clip is the env's own rollout under the actions, drawn by its renderer."""
    assert {p.kind for p in pairs} == set(scene.kinds) and len(pairs) == per_kind * len(scene.kinds)
    for p in pairs:
        assert np.array_equal(p.possible[:p.event], p.impossible[:p.event])
        assert not np.array_equal(p.possible[p.event], p.impossible[p.event])
        np.testing.assert_array_equal(p.states[0], roll(scene.env, p.states[0][0], p.actions))
        np.testing.assert_array_equal(p.possible, np.stack([scene.env.render_state(s) for s in p.states[0]]))


def proprio_model(env_id, scale):
    """``(model, meta)``: an untrained 32 px world model of ``env_id`` (2-d actions) that also takes
    ``state[0:2]``, normalised as if those values spread over ``[0, scale]``."""
    from worldjepa.config import from_dict, to_dict
    from worldjepa.configs import ModelConfig
    from worldjepa.world_model import build_world_model

    cfg = from_dict(ModelConfig, {"encoder": {"channels": [4, 8], "dim": 16}, "latent_dim": 8, "projector_hidden": 16,
                                  "frameskip": 2, "proprio": "state[0:2]", "proprio_dim": 2, "frame_size": 32,
                                  "action_dim": 2})
    model = build_world_model(cfg).eval()
    model.set_proprio_stats(np.random.default_rng(0).uniform(0, scale, (100, 2)))
    return model, {"env_id": env_id, "frame_size": 32, "model": to_dict(cfg)}
