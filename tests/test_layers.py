"""The package's layers: imports only point down, nothing imports in a circle, ``--help`` loads no torch.

Every import counts, also one made inside a function (a lazy import is still a dependency).
A package's modules belong to its layer; a layer may import from its own and lower layers.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "worldjepa"

# lowest first; a name is a top-level module or sub-package of worldjepa
LAYERS: list[set[str]] = [
    {"_version", "errors", "utils", "atomic", "locks", "signals", "paths", "config", "configs", "protocols",
     "metrics", "progress", "monitor"},  # foundation: no torch on import
    {"losses", "nn", "envs", "augment"},  # tensors and physics, no I/O of ours
    {"data", "checkpoint", "planning"},  # files, and search over costs
    {"world_model", "encoder_model", "pixel_model"},  # models assembled from parts, and their checkpoints
    {"memory", "physics"},  # what was seen, the map over it, routes; surprise, impossible events, probes
    {"training", "agent"},  # loops that fit models; the policy that uses them (and its memory)
    {"eval"},  # protocols and probes over agents and models
    {"cli", "__init__", "__main__"},  # the command line and the lazy public API
]
TORCH_FREE = ["worldjepa.configs", "worldjepa.config", "worldjepa.cli", "worldjepa.cli.common", "worldjepa"]


def layer_of(unit: str) -> int:
    for i, names in enumerate(LAYERS):
        if unit in names:
            return i
    raise AssertionError(f"worldjepa.{unit} is in no layer of tests/test_layers.py: add it where it belongs")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The worldjepa modules ``path`` imports (resolved to module names in ``known``)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                base = ".".join(up[:len(up) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:  # "worldjepa.nn.frames_to_float" -> "worldjepa.nn"
                name = name.rpartition(".")[0]
            if name.startswith("worldjepa") and name != mod:
                out.add(name)
                break
    return out


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, known) for f in files}


def unit(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``"a -> b"`` for every import of a higher layer's module."""
    return sorted(f"{m} (layer {layer_of(unit(m))}) -> {t} (layer {layer_of(unit(t))})"
                  for m, targets in graph.items() for t in targets
                  if unit(m) not in ("__init__", "__main__") and layer_of(unit(t)) > layer_of(unit(m)))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_in_a_layer_and_imports_point_down():
    graph = import_graph()
    assert not upward_imports(graph), "imports that point up:\n" + "\n".join(upward_imports(graph))


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_an_upward_import_and_a_cycle():
    """The checker itself: a low module importing a high one, and two modules importing each other."""
    bad = {"worldjepa.configs": {"worldjepa.world_model"}, "worldjepa.world_model": {"worldjepa.configs"},
           "worldjepa.data.a": {"worldjepa.data.b"}, "worldjepa.data.b": {"worldjepa.data.a"}}
    assert upward_imports(bad) == ["worldjepa.configs (layer 0) -> worldjepa.world_model (layer 3)"]
    assert sorted(cycles(bad)) == [["worldjepa.configs", "worldjepa.world_model"], ["worldjepa.data.a", "worldjepa.data.b"]]
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("memory_v2")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["eval", "--help"], ["pretrain", "--help"],
                                  ["plan", "--help"], ["collect", "--help"], ["plot", "--help"],
                                  ["physics", "--help"], ["probe", "--help"]])
def test_help_and_configs_load_no_torch(argv):
    code = ("import sys\n"
            f"for m in {TORCH_FREE!r}: __import__(m)\n"
            "from worldjepa.cli import main\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'h5py', 'gymnasium', 'numpy'})\n"
            "print('HEAVY', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, f"worldjepa {' '.join(argv)} imported {proc.stdout.split('HEAVY')[-1]}"
