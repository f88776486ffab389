"""The agent: short-term memory (:class:`History`), a latent cost and a planner under MPC, as
one goal-conditioned policy (:class:`Agent`)."""

from ..world_model import load_world_model as load_checkpoint
from .agent import Agent
from .history import History
from .inputs import check_frame
from .options import agent_config

__all__ = ["Agent", "History", "agent_config", "check_frame", "load_checkpoint"]
