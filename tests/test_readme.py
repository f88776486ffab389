"""The README's Python code runs as written (with tiny sizes swapped in, so it takes seconds)."""

import re

import pytest

from tests.conftest import ROOT


def python_blocks() -> list[str]:
    """Each block, behind as many blank lines as precede it: tracebacks name README.md's own lines."""
    text = (ROOT / "README.md").read_text()
    return ["\n" * text[:m.start(1)].count("\n") + m.group(1) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


def _shrunk(cls, **small):
    """Builds ``cls`` (the real class) with ``small`` over the README's own arguments."""
    from worldjepa.config import from_dict, to_dict

    def make(**kwargs):
        return from_dict(cls, {**to_dict(cls(**kwargs)), **small})
    return make


def test_the_readme_has_a_python_block():
    assert python_blocks(), "README.md lost its Python example"


@pytest.mark.parametrize("block", python_blocks())
def test_readme_python_block_runs(block, tmp_path, monkeypatch):
    import torch

    import worldjepa
    import worldjepa.configs as configs
    from worldjepa.agent import Agent

    monkeypatch.chdir(tmp_path)  # the README writes data/ and runs/ where it runs
    tiny = {**configs.PRESETS["train"]["small"], "steps": 10, "device": "cpu", "threads": 1, "progress": False}
    monkeypatch.setattr(configs, "CollectConfig",
                        _shrunk(configs.CollectConfig, episodes=12, steps=40, size=32, progress=False))
    monkeypatch.setattr(configs, "TrainConfig", _shrunk(configs.TrainConfig, **tiny))
    monkeypatch.setattr(configs, "EvalConfig", _shrunk(configs.EvalConfig, episodes=2, budget=5, progress=False))

    class SmallAgent:  # Agent.load with a planner that searches little
        @staticmethod
        def load(*args, **kwargs):
            return Agent.load(*args, **{**kwargs, "samples": 16, "iterations": 2, "horizon": 2})

    monkeypatch.setattr(worldjepa, "Agent", SmallAgent)
    threads = torch.get_num_threads()
    try:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    finally:
        torch.set_num_threads(threads)
