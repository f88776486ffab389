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

``gymext/PointMazeTop-v3``: Gymnasium-Robotics' MuJoCo ``PointMaze`` (``pip install
gymnasium-robotics``; D4RL's medium maze by default, ``maze_map=`` for another) seen from straight
above at 64 x 64, with the goal marker made invisible (a reward-free recording has no goal; the
marker would move at random in the frames) and the Dict observation flattened (Gymnasium's
``FlattenObservation``: keys in sorted order, so entries 0, 1 are the ball's position
``achieved_goal``, 2, 3 the unused ``desired_goal``, 4-7 ``observation`` = position and
velocity). No time limit; the ball starts in a random free cell at every reset. Success
criterion used in BENCHMARKS.md: ``--success-threshold 0.45 --success-dims 0,1``, the ball
within 0.45 m of where it is in the goal frame (Gymnasium-Robotics' own success radius).
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


def point_maze_top(maze_map=None, **kwargs):
    """Gymnasium-Robotics' ``PointMazeEnv`` seen from above, goal marker invisible, observation flat."""
    import mujoco
    from gymnasium.wrappers import FlattenObservation
    from gymnasium_robotics.envs.maze import maps
    from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

    env = PointMazeEnv(maze_map=maze_map or maps.MEDIUM_MAZE, **kwargs)
    inner = env.point_env  # the MuJoCo env that renders
    inner.model.site_rgba[mujoco.mj_name2id(inner.model, mujoco.mjtObj.mjOBJ_SITE, "target"), 3] = 0.0
    rows, cols = len(env.maze.maze_map), len(env.maze.maze_map[0])
    inner.mujoco_renderer.default_cam_config = {  # the whole maze, from straight above
        "distance": 1.25 * max(rows, cols), "elevation": -90.0, "azimuth": 90.0,
        "lookat": np.zeros(3), "trackbodyid": -1}
    return FlattenObservation(env)


if "gymext/PointMazeTop-v3" not in gym.registry:
    gym.register("gymext/PointMazeTop-v3", entry_point=point_maze_top, max_episode_steps=None,
                 kwargs={"width": 64, "height": 64})

