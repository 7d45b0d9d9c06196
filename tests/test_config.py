"""Config loading: defaults, YAML, overrides, and one-line errors."""

import pytest

from hiertok.config import ConfigError, load_config, split_planner_overrides, to_yaml
from hiertok.errors import UserError
from hiertok.tokenizer import TokenizerConfig


def test_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.01\nmodel:\n  quantizer:\n    levels: 4\n")
    cfg = load_config(TokenizerConfig, path, ["train.batch_size=7", "model.quantizer.codebook_sizes=[256,1000]"])
    assert cfg.train.lr == 0.01 and cfg.train.batch_size == 7
    assert cfg.model.quantizer.levels == 4 and cfg.model.quantizer.codebook_sizes == [256, 1000]
    assert cfg.data.source == "synthetic"
    assert load_config(TokenizerConfig, None, []) == TokenizerConfig()


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(TokenizerConfig, None, ["model.decoder.context=2", "data.max_docs=50"])
    path = tmp_path / "saved.yaml"
    path.write_text(to_yaml(cfg))
    assert load_config(TokenizerConfig, path) == cfg


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["train.lrr=1"], "lrr"),
        (["train.lr=fast"], "train.lr"),
        (["model.quantizer.levels=1.5"], "levels"),
        (["nonsense"], "key=value"),
        (["data.source"], "key=value"),
    ],
)
def test_bad_overrides_are_one_line(overrides, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(TokenizerConfig, None, overrides)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_bad_files_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(TokenizerConfig, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_config(TokenizerConfig, bad)
    assert "\n" not in str(e.value)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("trainer:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="trainer"):
        load_config(TokenizerConfig, unknown)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"- a\n- b\n", "not a list"),
        (b"hello", "hello"),
        (b"train: 5\n", "train"),
        (b"\xff\xfe\x00bad", "utf-8"),
        (b"!!python/object:os.system {}\n", "constructor"),
        (b"a: &x [*x]\n", "recursive"),
    ],
)
def test_a_file_of_another_shape_is_one_line(tmp_path, content, fragment):
    """A list, a scalar, a value for a section, bytes that are not UTF-8, a Python tag, a recursive alias."""
    path = tmp_path / "odd.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        load_config(TokenizerConfig, path)
    assert fragment in str(e.value).lower() and "\n" not in str(e.value)


def test_loading_twice_gives_independent_configs():
    """The defaults are built once per class (`config._defaults`); no load may change them for the next."""
    first = load_config(TokenizerConfig, None, ["train.lr=0.5", "model.quantizer.codebook_sizes=[8]"])
    first.model.quantizer.codebook_sizes.append(16)
    assert load_config(TokenizerConfig, None, []) == TokenizerConfig()


@pytest.mark.parametrize("stage", ["tokenizer", "planner"])
def test_shipped_configs_load_and_tiny_is_what_the_demo_trains(stage):
    from pathlib import Path

    from hiertok.shipped_configs import config_names, config_path
    from planner.config import PlannerConfig

    schema = {"tokenizer": TokenizerConfig, "planner": PlannerConfig}[stage]
    root = Path(__file__).resolve().parent.parent / "configs" / stage
    loaded = {p.stem: load_config(schema, p) for p in sorted(root.glob("*.yaml"))}
    assert {"tiny", "small", "base"} <= set(loaded)
    assert sorted(f"{stage}/{name}" for name in loaded) == [n for n in config_names() if n.startswith(f"{stage}/")]
    assert config_path(f"{stage}/tiny").read_text() == (root / "tiny.yaml").read_text()  # what the demo reads
    if stage == "planner":
        assert loaded["tiny"] == PlannerConfig()  # the planner's defaults are its tiny setting


def test_shipped_baseline_configs_load_and_match_the_hierarchy_in_parameters():
    from pathlib import Path

    from hiertok.flat_lm import BaselineConfig

    root = Path(__file__).resolve().parent.parent / "configs" / "baseline"
    loaded = {p.stem: load_config(BaselineConfig, p) for p in sorted(root.glob("*.yaml"))}
    assert {"tiny", "small", "base"} <= set(loaded)
    assert all(cfg.model.depth == 0 for cfg in loaded.values())  # depth chosen from `match=PLANNER_RUN`


def test_planner_overrides_are_split_from_the_tokenizer_ones_in_order():
    tok, plan = split_planner_overrides(["a=1", "planner.levels=4", "b.c=2", "planner.model.dim_head=32"])
    assert tok == ["a=1", "b.c=2"] and plan == ["levels=4", "model.dim_head=32"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.max_idea_tokens=80", "generation.max_tokens=64"],
            r"max_tokens \(64\) < data.max_idea_tokens",
        ),
        (["generation.max_tokens=200", "model.decoder.max_len=128"], r"generation.max_tokens \(200\) > model.decoder"),
    ],
)
def test_the_three_length_limits_are_cross_checked(overrides, message, tmp_path):
    """data.max_idea_tokens <= generation.max_tokens <= model.decoder.max_len, refused before a run starts."""
    from hiertok.config import load_config
    from hiertok.tokenizer import TokenizerConfig
    from hiertok.train_tokenizer import train

    with pytest.raises(ValueError, match=message):
        small = ["data.synthetic_docs=50", "data.bpe_docs=50", "data.vocab_size=300", "train.max_steps=1"]
        train(load_config(TokenizerConfig, None, [*overrides, *small]), tmp_path / "run")  # small: fails fast if run
    assert not (tmp_path / "run").exists()


def test_config_show_prints_a_shipped_config_and_names_the_choices(capsys):
    from pathlib import Path

    from hiertok.cli import main

    assert main(["config", "show", "tokenizer/tiny"]) == 0
    assert (
        capsys.readouterr().out == (Path(__file__).resolve().parent.parent / "configs/tokenizer/tiny.yaml").read_text()
    )
    assert main(["config", "list"]) == 0
    assert "planner/tiny" in capsys.readouterr().out.split()
    assert main(["config", "show", "tokenizer/nope"]) == 2
    assert "choose one of" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.batch_size=0", "train.batch_size must be >= 1"),
        ("train.grad_accum=0", "train.grad_accum must be >= 1"),
        ("train.max_steps=0", "train.max_steps must be >= 1"),
        ("train.save_every=0", "train.save_every must be >= 1"),
        ("train.stop_at_step=0", "train.stop_at_step must be >= 1"),
        ("train.lr=-1", "train.lr must be > 0"),
        ("train.warmup_steps=-5", "train.warmup_steps must be >= 0"),
        ("train.min_lr_ratio=2", "train.min_lr_ratio must be in [0, 1]"),
        ("train.betas=[0.9,1.5]", "train.betas must be two numbers"),
        ("train.mixed_precision=fp32", "train.mixed_precision must be no, bf16 or fp16"),
        ("data.eval_docs=0", "data.eval_docs must be >= 1"),
        ("data.max_docs=0", "data.max_docs must be >= 1"),
        ("model.encoder.dim=0", "model.encoder.dim must be >= 1"),
        ("model.encoder.heads=0", "model.encoder.heads must be >= 1"),
        ("model.decoder.depth=0", "model.decoder.depth must be >= 1"),
        ("model.decoder.dim_head=0", "model.decoder.dim_head"),
    ],
)
def test_settings_no_run_can_use_are_refused_before_a_run_exists(override, fragment, tmp_path):
    """A zero batch was a ZeroDivisionError deep in the batch plan, a zero grad_accum a KeyError after a step, zero
    held-out documents a reshape error after training; a width or depth of 0 trained, and max_docs=0 meant no cap."""
    from hiertok.errors import UserError
    from hiertok.train_tokenizer import train

    cfg = load_config(TokenizerConfig, None, [override, "data.synthetic_docs=50", "data.bpe_docs=50"])
    with pytest.raises(UserError) as e:
        train(cfg, tmp_path / "run")
    assert fragment in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_a_bare_no_for_mixed_precision_means_no():
    """YAML reads `no` as false (Accelerate then refused 'False' with a traceback)."""
    cfg = load_config(TokenizerConfig, None, ["train.mixed_precision=no"])
    cfg.train.validate()
    assert cfg.train.mixed_precision == "no"


@pytest.mark.parametrize("choice", [{"max_docs": 0}, {"eval_docs": 0}, {"synthetic_docs": 0}])
def test_a_later_stage_choosing_zero_documents_is_refused(choice):
    """A planner's or a flat LM's `data.max_docs=0` fell back to the tokenizer's setting unseen."""
    from hiertok.config import DataConfig
    from hiertok.data.corpus import DocumentChoice

    with pytest.raises(ConfigError, match=f"data.{next(iter(choice))} must be >= 1"):
        DocumentChoice(**choice).apply(DataConfig())
    assert DocumentChoice(max_docs=5).apply(DataConfig()).max_docs == 5
    assert DocumentChoice(synthetic_docs=7).apply(DataConfig()).synthetic_docs == 7


def test_a_later_stage_changes_the_video_worlds_knobs_it_names_only():
    """A planner's `data.video: {turn_prob: 0.1}` keeps the tokenizer's other knobs (an 8 x 8 world stays 8 x 8)."""
    from hiertok.config import DataConfig
    from hiertok.data.corpus import DocumentChoice
    from hiertok.data.video import VideoWorldConfig

    data = DataConfig(source="video", video=VideoWorldConfig(height=8, width=8, frames=6))
    assert DocumentChoice(video={"turn_prob": 0.1}).apply(data).video == VideoWorldConfig(8, 8, 6, turn_prob=0.1)
    assert DocumentChoice().apply(data).video == data.video
    for bad, words in (({"turn": 0.1}, "Key 'turn' not in"), ({"turn_prob": "x"}, "could not be converted")):
        with pytest.raises(UserError, match=words):
            DocumentChoice(video=bad).apply(data)
