"""Imports go one way: core -> decoder -> tokenizer -> planner -> app (README: "What it is").

Every import counts, also those inside functions, since they break the layering as much when they run. And
inference never imports training code: what generation loads must not need the trainers.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hiertok", "planner", "decoder")

# Lowest first. A module may import its own layer and the layers before it. A module not listed is an error,
# so that a new file is placed on purpose.
LAYERS: dict[str, set[str]] = {
    "core": {
        "hiertok",
        "hiertok.atomic",
        "hiertok.checks",
        "hiertok.codes",
        "hiertok.config",
        "hiertok.errors",
        "hiertok.layers",
        "hiertok.patches",
        "hiertok.loop",
        "hiertok.sampling",
        "hiertok.shipped_configs",
        "hiertok.stage",
        "hiertok.training",
        "hiertok.data",
        "hiertok.data.bpe",
        "hiertok.data.corpus",
        "hiertok.data.ideas",
        "hiertok.data.segment",
        "hiertok.data.sources",
        "hiertok.data.story_state",
        "hiertok.data.synthetic",
        "hiertok.data.pixels",
        "hiertok.data.video",
        "hiertok.data.video_floor",
        "hiertok.data.video_files",
        "hiertok.video_objects",
        "hiertok.video_moves",
    },
    "decoder": {
        "decoder",
        "decoder.copy",
        "decoder.drafts",
        "decoder.generate",
        "decoder.model",
        "decoder.story_context",
    },
    "tokenizer": {
        "hiertok.autoencoder",
        "hiertok.detail_noise",
        "hiertok.encoder",
        "hiertok.evaluate",
        "hiertok.frame_search",
        "hiertok.idea_losses",
        "hiertok.quantize",
        "hiertok.story_decoding",
        "hiertok.tokenizer",
        "hiertok.train_tokenizer",
        "hiertok.video_eval",
        "hiertok.video_probe",
    },
    "planner": {
        "planner",
        "planner.config",
        "planner.evaluate",
        "planner.model",
        "planner.search",
        "planner.shards",
        "planner.train",
        "planner.vocab",
        "planner.windows",
    },
    "app": {
        "hiertok.cli",
        "hiertok.cli_generate",
        "hiertok.cli_io",
        "hiertok.cli_video",
        "hiertok.codelength",
        "hiertok.demo",
        "hiertok.eval_planner",
        "hiertok.flat_generate",
        "hiertok.flat_lm",
        "hiertok.pipeline",
        "hiertok.rollout",
        "hiertok.train_baseline",
        "hiertok.video_gif",
    },
}
TRAINING = {"hiertok.train_tokenizer", "planner.train", "hiertok.train_baseline", "hiertok.loop", "hiertok.stage"}
INFERENCE = {
    "hiertok.pipeline",
    "hiertok.rollout",
    "hiertok.flat_generate",
    "hiertok.tokenizer",
    "hiertok.story_decoding",
    "hiertok.frame_search",
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path) -> set[str]:
    """The project modules a file imports (`from a.b import c` counts a.b, and a.b.c when that is a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.split(".")[0] in PACKAGES}


def _layer_of() -> dict[str, int]:
    return {m: i for i, (_, mods) in enumerate(LAYERS.items()) for m in mods}


def test_every_module_has_a_layer():
    layer = _layer_of()
    assert sorted(set(_modules()) - set(layer)) == [], "place the new module in a layer of LAYERS"
    assert sorted(set(layer) - set(_modules())) == [], "LAYERS names a module that no longer exists"


def test_imports_go_one_way():
    layer, modules = _layer_of(), _modules()
    names = list(LAYERS)
    wrong = [
        f"{m} ({names[layer[m]]}) imports {i} ({names[layer[i]]})"
        for m, path in modules.items()
        for i in sorted(_imports(path))
        if i in layer and layer[i] > layer[m]
    ]
    assert wrong == []


def test_inference_does_not_import_training_code():
    modules = _modules()
    wrong = [f"{m} imports {i}" for m in sorted(INFERENCE) for i in sorted(_imports(modules[m]) & TRAINING)]
    assert wrong == []


def test_the_rules_catch_an_upward_import(tmp_path):
    """The checker itself: a decoder module that imports the tokenizer is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from hiertok.tokenizer import IdeaTokenizer\n")
    layer = _layer_of()
    assert any(layer[i] > layer["decoder.model"] for i in _imports(bad) if i in layer)
