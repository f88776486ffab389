"""Third-party Gymnasium envs used by the benchmarks, registered with camera settings for 64 px.

Pass this file to any command that needs the ids: ``--env-module benchmarks/thirdparty_envs.py``.
Nothing here is a worldjepa env: each id is Gymnasium's own class, configured.

``gymext/ReacherTop-v5``: Gymnasium's MuJoCo ``Reacher-v5`` (``gymnasium[mujoco]``; headless
rendering needs ``MUJOCO_GL=osmesa`` and libosmesa6 on Linux without a display) seen from
straight above at 64 x 64, without the 50-step time limit (the collector picks the episode
length), and with the target sphere made invisible (it stays in the physics and in the
observation). Why hidden: the target sits still for a whole episode at a place drawn per
episode, so an encoder trained from pixels with a prediction loss + SIGReg can satisfy both
by encoding only the target (perfect prediction: nothing changes; spread-out embeddings:
targets differ between episodes) and ignoring the arm -- which it did (validation prediction
error equal to "copy the last embedding"). The goal image shows the arm's goal pose instead,
as in worldjepa/Reacher-v0. Success criterion used in BENCHMARKS.md: ``--success-threshold 0.025 --success-dims
8,9`` -- the fingertip within 2.5 cm of where it is in the goal frame (observation entries 8, 9
are the fingertip minus the episode's fixed target, so their difference between two steps is
the fingertip's displacement), the same radius as worldjepa/Reacher-v0.
"""

import os

import gymnasium as gym
import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")

TOP_CAMERA = {"distance": 0.6, "elevation": -90.0, "azimuth": 90.0, "lookat": np.zeros(3), "trackbodyid": -1}



def reacher_without_target(**kwargs):
    """Gymnasium's ``ReacherEnv`` with the target geom fully transparent."""
    import mujoco
    from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv

    env = ReacherEnv(**kwargs)
    gid = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_GEOM, "target")
    env.model.geom_rgba[gid, 3] = 0.0
    return env


if "gymext/ReacherTop-v5" not in gym.registry:
    gym.register("gymext/ReacherTop-v5", entry_point=reacher_without_target,
                 max_episode_steps=None,
                 kwargs={"width": 64, "height": 64, "default_camera_config": TOP_CAMERA})
