"""The built-in physical environments, registered with Gymnasium on import (``import worldjepa``
registers them too, without importing Gymnasium itself: see ``worldjepa/__init__.py``).

Importing this package is cheap: each id points at its class by an entry-point string, so
numpy physics modules (and pymunk, for Push-T and Balls only) load when ``gymnasium.make`` builds
the env. No id has ``max_episode_steps``: the collector decides episode lengths.

    >>> import gymnasium as gym, worldjepa
    >>> env = gym.make("worldjepa/TwoRoom-v0", render_mode="rgb_array", size=64)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

# id -> (entry point, fixed keyword arguments of the variant)
_SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "worldjepa/TwoRoom-v0": ("worldjepa.envs.tworoom:TwoRoomEnv", {"random_door": False}),
    "worldjepa/TwoRoomRandomDoor-v0": ("worldjepa.envs.tworoom:TwoRoomEnv", {"random_door": True}),
    "worldjepa/TwoRoomSwitch-v0": ("worldjepa.envs.tworoom_switch:TwoRoomSwitchEnv", {}),  # door opened by a switch
    "worldjepa/PointMaze-UMaze-v0": ("worldjepa.envs.pointmaze:PointMazeEnv", {"layout": "umaze"}),
    "worldjepa/PointMaze-Medium-v0": ("worldjepa.envs.pointmaze:PointMazeEnv", {"layout": "medium"}),
    "worldjepa/PointMaze-Large-v0": ("worldjepa.envs.pointmaze:PointMazeEnv", {"layout": "large"}),
    "worldjepa/PointMaze-Procedural-v0": ("worldjepa.envs.pointmaze:PointMazeEnv", {"layout": "procedural"}),
    "worldjepa/Reacher-v0": ("worldjepa.envs.reacher:ReacherEnv", {}),
    "worldjepa/PushT-v1": ("worldjepa.envs.pusht:PushTEnv", {}),  # Diffusion Policy's physics
    "worldjepa/PushT-v0": ("worldjepa.envs.pusht:PushTEnv", {"damping": 0.05, "friction": 0.5}),  # sliding
    "worldjepa/Balls-v0": ("worldjepa.envs.balls:BallsEnv", {}),  # action-free falling, bouncing balls (pymunk)
    "worldjepa/Rooms-v0": ("worldjepa.envs.rooms:RoomsEnv", {}),  # nine rooms seen one at a time, an object now and then
}

BUILTIN_IDS: tuple[str, ...] = tuple(_SPECS)
# ids whose gym.make skips Gymnasium's passive checker: it warns on every make that the action-free
# Balls' Box(0, 0) has equal bounds, which is by design (tests run the full check_env on every id)
_UNCHECKED = {"worldjepa/Balls-v0"}


def register() -> None:
    """Register every id in :data:`BUILTIN_IDS` with Gymnasium; calling it again does nothing."""
    for env_id, (entry_point, kwargs) in _SPECS.items():
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs), disable_env_checker=env_id in _UNCHECKED)


register()

__all__ = ["BUILTIN_IDS", "register"]
