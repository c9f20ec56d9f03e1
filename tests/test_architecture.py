"""The package's layering, read from the source with ast: no import cycle, imports only go down the layers, and the
library never reads absl flags. A new module must be given a layer here (see ../shared/DESIGN.md)."""

import ast
import os
import re

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dcgan_tf")

# 0: the leaves at the top (settings, pictures, z, files); 1: data, the networks and what the training step uses, the
# metrics' maths; 2: the model and its run folder; 3: the jobs; 4: the web demo. A package's modules take its layer
# unless named themselves (core spans 1-2, metrics 1 and 3, serving 3-4).
LAYERS = {
    "config": 0, "files": 0, "images": 0, "latent": 0,
    "data": 1,
    "core": 1, "core.networks": 1, "core.losses": 1, "core.augment": 1, "core.distribution": 1,
    "core.model": 2, "core.build": 2,
    "runs": 2,
    "metrics": 1,  # the maths and the feature networks; its job is named below
    "metrics.evaluate": 3,
    "preprocess": 3, "training": 3, "analysis": 3, "sweeps": 3,
    "serving": 3,
    "serving.demo": 4,  # the web app: imports only serving.export, latent and images
}
LEAVES = sorted(name for name, layer in LAYERS.items() if layer == 0)
SUBPACKAGES = sorted({name.split(".")[0] for name in LAYERS} - set(LEAVES))


def layer_of(module: str) -> int | None:
    """The layer of a module: its own entry, else its nearest enclosing package's (metrics.fid -> metrics)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYERS:
            return LAYERS[".".join(parts[:end])]
    return None


def package_modules() -> dict[str, str]:
    """{dotted name inside dcgan_tf: file path} of every module (a subpackage's __init__ under its own name)."""
    found = {}
    for root, folders, names in os.walk(PACKAGE):
        folders[:] = sorted(f for f in folders if not f.startswith(("_", ".")))
        relative = os.path.relpath(root, PACKAGE)
        prefix = "" if relative == "." else relative.replace(os.sep, ".")
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            stem = name[:-3]
            if stem == "__init__":
                if prefix:
                    found[prefix] = os.path.join(root, name)
                continue
            found[f"{prefix}.{stem}" if prefix else stem] = os.path.join(root, name)
    return found


def imports_of(path: str, modules) -> tuple[set[str], set[str]]:
    """(package modules imported anywhere in the file, top-level names of outside packages imported)."""
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "dcgan_tf" or node.module.startswith("dcgan_tf."):
                base = node.module[len("dcgan_tf"):].lstrip(".")
                for alias in node.names:
                    candidate = f"{base}.{alias.name}" if base else alias.name
                    if candidate in modules:  # `from dcgan_tf.data import loading`
                        names.append(f"dcgan_tf.{candidate}")
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name == "dcgan_tf" or name.startswith("dcgan_tf."):
                module = name[len("dcgan_tf"):].lstrip(".")
                if module in modules:
                    inside.add(module)
            else:
                outside.add(name.split(".")[0])
    return inside, outside


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {module: imports_of(path, modules)[0] - {module} for module, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_a_module_takes_its_own_layer_else_its_packages():
    assert layer_of("metrics.fid") == 1 and layer_of("metrics.evaluate") == 3 and layer_of("training") == 3
    assert layer_of("training.loop") == 3 and layer_of("core.networks") == 1 and layer_of("core.model") == 2
    assert layer_of("serving.export") == 3 and layer_of("serving.demo.app") == 4
    assert layer_of("nowhere") is None


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y"}}) == ["y", "y"]


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_has_a_layer_and_imports_only_go_down():
    graph = import_graph()
    unplaced = sorted(module for module in graph if module != "" and layer_of(module) is None)
    assert unplaced == [], f"give these modules a layer in LAYERS: {unplaced}"
    upward = [f"{module} (layer {layer_of(module)}) -> {target} (layer {layer_of(target)})"
              for module, targets in graph.items() for target in targets if layer_of(target) > layer_of(module)]
    assert upward == []


@pytest.mark.parametrize("module", sorted(package_modules()))
def test_the_library_never_reads_absl_flags(module):
    path = package_modules()[module]
    _, outside = imports_of(path, package_modules())
    assert "absl" not in outside and "flags" not in outside
    assert not re.search(r"\bFLAGS\b", open(path, encoding="utf-8").read())


def test_the_demo_imports_only_the_export_the_latent_space_and_pictures():
    graph = import_graph()
    demo_imports = set().union(*(targets for module, targets in graph.items()
                                 if module == "serving.demo" or module.startswith("serving.demo.")))
    assert demo_imports - {"serving.demo", "serving.demo.app"} == {"serving.export", "latent", "images"}


def test_the_top_level_holds_only_the_leaves_and_the_subpackages():
    """`ls dcgan_tf` shows the architecture: the layer-0 modules and one folder per package of LAYERS, nothing
    else (a new module goes into the package of its job)."""
    entries = sorted(name for name in os.listdir(PACKAGE) if name != "__pycache__" and not name.startswith("."))
    modules = sorted(name[:-3] for name in entries if name.endswith(".py") and name != "__init__.py")
    folders = sorted(name for name in entries if os.path.isdir(os.path.join(PACKAGE, name)))
    assert modules == LEAVES
    assert folders == SUBPACKAGES
    assert sorted(entries) == sorted(["__init__.py", *[f"{name}.py" for name in LEAVES], *SUBPACKAGES])
    for name in SUBPACKAGES:
        assert os.path.isfile(os.path.join(PACKAGE, name, "__init__.py")), f"{name} is not a package"
