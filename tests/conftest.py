"""Shared fixtures: offline hubs, and one toy tokenizer run trained once per session."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2`: one thread per worker (and per process it starts),
    os.environ["OMP_NUM_THREADS"] = "1"  # so that two workers share the two cores instead of fighting for them

import pytest  # noqa: E402
import torch  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

from .cached_runs import cached_run  # noqa: E402
from .mutation_order import prioritise, record_kill  # noqa: E402


@pytest.hookimpl(trylast=True)  # after pytest's own grouping by fixture: the sort is stable, ties keep it
def pytest_collection_modifyitems(items):
    prioritise(items)  # in a mutation run's mutant session only: the likeliest killer first


def pytest_runtest_logreport(report):
    if report.failed:
        record_kill(report.nodeid)  # in a mutation run's mutant session only


# A model small enough to train in seconds on the synthetic world.
TOY = [
    "data.synthetic_docs=300",
    "data.eval_docs=12",
    "data.vocab_size=512",
    "model.encoder.dim=32",
    "model.encoder.heads=2",
    "model.decoder.dim=32",
    "model.decoder.heads=2",
    "model.quantizer.levels=4",
    "train.batch_size=32",
    "train.max_steps=40",
    "train.warmup_steps=5",
    "train.lr=3e-3",
    "train.eval_every=20",
    "train.save_every=20",
    "train.log_every=5",
    "train.eval_ideas=16",
    "train.progress=false",
    "generation.max_tokens=40",
    "data.max_idea_tokens=40",
]


def _train(main, stage: str, out, args: list[str]) -> None:
    """Train one stage through the CLI entry point, as a user would."""
    assert main(["train", stage, "--out", str(out), *args]) == 0


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """A trained toy tokenizer run directory (trained through the CLI entry point)."""
    from hiertok.cli import main

    return cached_run(
        "toy", TOY, lambda out: _train(main, "tokenizer", out, TOY), tmp_path_factory.mktemp("toy") / "tok"
    )


PLANNER_TOY = [
    "model.dim=32",
    "model.depth=2",
    "model.heads=2",
    "data.window=8",
    "train.batch_size=16",
    "train.max_steps=30",
    "train.warmup_steps=5",
    "train.lr=3e-3",
    "train.eval_every=15",
    "train.save_every=15",
    "train.log_every=5",
    "train.eval_ideas=8",
    "train.progress=false",
    "search.max_ideas=3",
    "search.num_beams=2",
    "search.decode_candidates=1",  # greedy only: the tests of candidates ask for them (the toy rarely accepts one)
]


@pytest.fixture(scope="session")
def toy_planner_run(toy_run, tmp_path_factory):
    """A trained toy planner run on the toy tokenizer's codes (trained through the CLI entry point)."""
    from hiertok.cli import main

    args = [f"tokenizer={toy_run}", *PLANNER_TOY]
    train = lambda out: _train(main, "planner", out, args)  # noqa: E731
    return cached_run("toy_planner", args, train, tmp_path_factory.mktemp("toy") / "plan", paths=[toy_run])


FLAT_TOY = [
    "model.dim=32",
    "model.depth=2",
    "model.heads=2",
    "model.context=64",
    "train.batch_size=8",
    "train.max_steps=30",
    "train.eval_every=30",
    "train.save_every=30",
    "train.log_every=10",
    "train.eval_ideas=8",
    "train.warmup_steps=2",
    "train.lr=3e-3",
    "train.progress=false",
]


@pytest.fixture(scope="session")
def toy_flat_run(toy_run, tmp_path_factory):
    """A trained toy flat LM on the toy tokenizer's documents and BPE (trained through the CLI entry point)."""
    from hiertok.cli import main

    args = [f"tokenizer={toy_run}", *FLAT_TOY]
    train = lambda out: _train(main, "baseline", out, args)  # noqa: E731
    return cached_run("toy_flat", args, train, tmp_path_factory.mktemp("toy") / "flat", paths=[toy_run])


@pytest.fixture(scope="session")
def recon_run(tmp_path_factory):
    """A toy tokenizer trained to reconstruct tests/recon_world.py's stories (about 10 s)."""
    from hiertok.cli import main

    from .recon_world import RECON, write_corpus

    root = tmp_path_factory.mktemp("recon")
    data = write_corpus(root / "train.jsonl")
    args = [f"data.source={data}", *RECON]
    return cached_run("recon", args, lambda out: _train(main, "tokenizer", out, args), root / "tok", paths=[data])


# An untrained decoder writes every idea to its token budget and changes its texts for many passes: the tests of the
# decoding machinery that use one give it a short budget (12 tokens, about half a toy sentence) to run in a third
# of the time; what they check (passes, drafts, settings, known ideas) does not depend on the texts' length.
UNTRAINED_BUDGET = ["generation.max_tokens=12"]


@pytest.fixture(scope="module", params=[False, True], ids=["attend", "copy"])
def context_pipe(toy_run, request):
    """An untrained tokenizer whose decoder reads 2 earlier ideas (and, with copy, may copy their tokens), and an
    untrained planner over it."""
    import torch

    from hiertok.config import load_config
    from hiertok.data.bpe import BPE
    from hiertok.pipeline import Pipeline
    from hiertok.tokenizer import IdeaTokenizer, TokenizerConfig
    from planner.config import PlannerConfig, build_planner

    torch.manual_seed(0)
    over = [*TOY, *UNTRAINED_BUDGET, "model.decoder.context=2", f"model.decoder.copy={request.param}"]
    cfg = load_config(TokenizerConfig, None, over)
    tok = IdeaTokenizer(cfg, BPE.load(toy_run / "tokenizer.json"))
    tok.model.eval()
    pcfg = load_config(PlannerConfig, None, ["model.dim=32", "model.depth=1", "model.heads=2"])
    return Pipeline(tok, build_planner(pcfg, tok), pcfg)


@pytest.fixture(scope="module")
def state_pipe(toy_run):
    """As `context_pipe` (copy), with a decoder that also reads the planner's state before each idea
    (`model.decoder.state_dim`), its state weights drawn so that the state matters."""
    import torch

    from hiertok.config import load_config
    from hiertok.data.bpe import BPE
    from hiertok.pipeline import Pipeline
    from hiertok.tokenizer import IdeaTokenizer, TokenizerConfig
    from planner.config import PlannerConfig, build_planner

    torch.manual_seed(0)
    over = [*TOY, *UNTRAINED_BUDGET, "model.decoder.context=2", "model.decoder.copy=true", "model.decoder.state_dim=32"]
    tok = IdeaTokenizer(load_config(TokenizerConfig, None, over), BPE.load(toy_run / "tokenizer.json"))
    with torch.no_grad():
        tok.model.decoder.to_state.weight.normal_(std=1.0)
    tok.model.eval()
    pcfg = load_config(PlannerConfig, None, ["model.dim=32", "model.depth=1", "model.heads=2"])
    return Pipeline(tok, build_planner(pcfg, tok), pcfg)


@pytest.fixture
def toy_tok(toy_run):
    """The toy tokenizer, loaded afresh for each test (a test may change its settings)."""
    from hiertok.tokenizer import IdeaTokenizer

    return IdeaTokenizer.from_pretrained(toy_run)


@pytest.fixture
def toy_pipe(toy_planner_run):
    """The toy planner and its tokenizer, loaded afresh for each test (a test may change its settings)."""
    from hiertok.pipeline import Pipeline

    return Pipeline.from_pretrained(toy_planner_run)
