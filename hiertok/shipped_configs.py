"""The configs that ship with hiertok (configs/{tokenizer,planner,baseline}/*.yaml), by name: "tokenizer/tiny".

An installed wheel holds them in hiertok/configs (pyproject.toml maps the package there); a repository checkout
(an editable install included, which does not map it) reads them from configs/ beside the packages.
"""

from __future__ import annotations

from pathlib import Path

from hiertok.errors import UserError

STAGES = ("tokenizer", "planner", "baseline")


def configs_root() -> Path:
    """The directory that holds the shipped configs: hiertok/configs in an installed wheel, else configs/ beside
    hiertok/ in a checkout. (Plain paths, not importlib.resources: without an __init__.py the configs are a
    namespace package, whose resources are not one directory.)"""
    here = Path(__file__).resolve().parent
    installed = here / "configs"
    return installed if installed.is_dir() else here.parent / "configs"


def config_names() -> list[str]:
    """Every shipped config as STAGE/NAME, sorted."""
    root = configs_root()
    return sorted(f"{stage}/{p.stem}" for stage in STAGES for p in (root / stage).glob("*.yaml"))


def config_path(name: str) -> Path:
    """The file of a shipped config ("tokenizer/tiny"; UserError naming the choices if there is none)."""
    path = configs_root() / f"{name.removesuffix('.yaml')}.yaml"
    if name.removesuffix(".yaml") not in config_names():
        raise UserError(f"no shipped config {name!r}; choose one of {', '.join(config_names())}")
    return path
