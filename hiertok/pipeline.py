"""Tokenizer + planner + decoder: prompt -> ideas -> codes -> plan search -> all planned ideas decoded at once.

pipe = Pipeline.from_pretrained("runs/plan")
result = pipe.generate("tom found a key.", sentences=6, beams=8, goal="tom opened the old box.")
print(result.best.text)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from einops import rearrange, repeat

from hiertok.checks import MAX_BEAMS, MAX_IDEAS, MAX_SEED, check_int, check_text
from hiertok.codes import Codes
from hiertok.config import ConfigError, load_config
from hiertok.data.segment import normalize_text
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer
from hiertok.training import CONFIG_FILE, WEIGHTS_FILE, load_weights
from planner.config import PlannerConfig, build_planner
from planner.model import Planner
from planner.search import Plan, SearchConfig, search
from planner.shards import TokenizerMismatchError, tokenizer_hash


def find_tokenizer(planner_dir: Path, cfg: PlannerConfig) -> Path:
    """The tokenizer run a planner run was trained on: its recorded path as typed (absolute, or relative to the
    working directory), else the same tokenizer found from the planner run's own directory (a moved run); of the two,
    the one whose content hash is the recorded one.

    Raises:
        FileNotFoundError: neither exists (one line naming both and the way out).
    """
    typed = Path(cfg.tokenizer)
    candidates = [typed] + ([planner_dir / cfg.tokenizer_from_run] if cfg.tokenizer_from_run else [])
    found = [path for path in candidates if (path / CONFIG_FILE).is_file()]
    # Both exist and differ: the typed path may name another tokenizer from here; take the one with the recorded hash.
    if len(found) > 1 and found[0].resolve() != found[1].resolve():
        found = [path for path in found if tokenizer_hash(path) == cfg.tokenizer_hash] or found
    if found:
        return found[0]  # the caller checks its hash (and reports a mismatch)
    tried = " nor ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"the tokenizer recorded in {planner_dir / CONFIG_FILE} is not at {tried}: "
        "pass --tokenizer TOKENIZER_RUN (Python: tokenizer=...)"
    )


@dataclass
class PlannedText:
    """One plan and its text."""

    codes: list[list[int]]  # (N, L) the planned ideas' codes
    ideas: list[str]  # each planned idea decoded
    logprob: float
    score: float
    ended: bool
    idea_logprobs: list[float] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.ideas)


@dataclass
class Generation:
    """A prompt's continuation: its n-best (or sampled) plans, best first."""

    prompt: str
    prompt_codes: list[list[int]]
    plans: list[PlannedText]

    @property
    def best(self) -> PlannedText:
        return self.plans[0]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"text": self.best.text}


class Pipeline:
    """A trained planner with the idea tokenizer it was trained on."""

    def __init__(self, tokenizer: IdeaTokenizer, planner: Planner, cfg: PlannerConfig):
        self.tokenizer, self.planner, self.cfg = tokenizer, planner.eval(), cfg
        self.levels = planner.vocab.levels  # planned levels: the decoder expands ideas from this prefix

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, tokenizer: str | Path | None = None, device: str | torch.device = "cpu"
    ) -> Pipeline:
        """Load a planner run and its tokenizer (the recorded one, see `find_tokenizer`, unless `tokenizer` is given).

        Raises:
            FileNotFoundError / UserError: a missing or broken file, one line.
            TokenizerMismatchError: the tokenizer's content hash differs from the one the planner was trained on.
        """
        directory = Path(directory)
        if (directory / "tokenizer.json").is_file():
            raise UserError(f"{directory} is an idea tokenizer run; pass a planner run (hiertok train planner)")
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} not found: not a trained planner run")
        try:
            cfg = load_config(PlannerConfig, directory / CONFIG_FILE)
        except ConfigError as e:
            raise UserError(f"{directory / CONFIG_FILE}: {e}") from None
        tok_dir = Path(tokenizer) if tokenizer is not None else find_tokenizer(directory, cfg)
        found = tokenizer_hash(tok_dir)
        if found != cfg.tokenizer_hash:
            raise TokenizerMismatchError(
                f"planner {directory} was trained on tokenizer {cfg.tokenizer_hash}, but {tok_dir} is {found}"
            )
        tok = IdeaTokenizer.from_pretrained(tok_dir, device=device)
        planner = build_planner(cfg, tok)
        load_weights(planner, directory / WEIGHTS_FILE)  # then .to(device)
        return cls(tok, planner.to(device), dataclasses.replace(cfg, tokenizer=str(tok_dir)))

    def plans(
        self,
        prompt_codes: torch.Tensor,
        goal_codes: torch.Tensor | None,
        cfg: SearchConfig,
        seed: int = 0,
        progress: bool = False,
    ) -> list[list[Plan]]:
        """Search plans for prompts of one length: (B, T, L) codes, optional (B, L) goals.

        A prompt longer than the planner's training window is planned from its last `data.window` ideas.
        `progress`: a progress bar over the planned ideas on stderr.
        """
        cfg = dataclasses.replace(cfg, max_context=cfg.max_context or self.cfg.data.window)
        device = next(self.planner.parameters()).device
        goal = None if goal_codes is None else goal_codes.to(device)
        generator = torch.Generator(device=device).manual_seed(seed)
        return search(self.planner, prompt_codes.to(device), goal, cfg, generator, progress)

    def idea_states(self, codes: Codes, batch_size: int = 256) -> torch.Tensor | None:
        """The planner's state before each idea (no goal shown), for a decoder that reads one (`model.decoder.
        state_dim`, as a global-to-local model's local decoder reads the global model's state; None otherwise).

        A function of the earlier ideas' planned codes only, which a receiver of the code already has: the
        lossless code stays lossless. A document is read whole, not in the planner's training windows (rotary
        positions extend past them).

        Args:
            codes: (docs, ideas, L) codes with at least the planned levels.
            batch_size: documents per forward pass.

        Returns:
            (N, D) states in `Codes.flat` order, or None.
        """
        if not self.tokenizer.model.decoder.cfg.state_dim:
            return None
        vocab, device = self.planner.vocab, self.tokenizer.device
        out = []
        with torch.no_grad():
            for start in range(0, codes.num_docs, batch_size):
                mask = codes.mask[start : start + batch_size].to(device)
                ids = vocab.to_ids(codes.ids[start : start + batch_size, :, : self.levels].clamp(min=0).to(device))
                states = self.planner.states(ids.masked_fill(~mask[..., None], 0), None, None, None)
                out.append(states[:, :-1][mask])  # causal: padding after a document's ideas changes none of them
        return torch.cat(out) if out else torch.zeros(0, self.planner.cfg.dim, device=device)

    def expand(
        self,
        prompt_codes: torch.Tensor,
        plans: list[list[Plan]],
        candidates: int | None = None,
        seed: int = 0,
        prompt_ideas: list[list[list[int]]] | None = None,
        passes: int | None = None,
        verify: bool = True,
        goal_codes: torch.Tensor | None = None,
        goal_ideas: list[list[int]] | None = None,
    ) -> list[list[list[str]]]:
        """Decode every planned idea of every plan in ONE batch.

        Each plan is decoded as a document prompt + plan: with a story context (`model.decoder.context`), a
        planned idea's decoder reads the prompt's ideas by their text and the plan's earlier ideas by their
        codes. Only the planned ideas are decoded and returned. With `candidates` > 1, every planned idea is
        decoded greedily and re-encoded; the ideas whose level-1 code is not the plan's are sampled again at
        temperature 0.7 (in one batch per round, `candidates` - 1 rounds at most) until one is; the first that
        is, is kept (greedy when none is): the text then follows the plan's gist even where greedy drifts off it.

        Args:
            prompt_codes: (B, T, L) codes of the prompts.
            plans: per prompt, its plans.
            candidates: decodings per idea (None: the config's `search.decode_candidates`).
            seed: sampling seed of the extra candidates.
            prompt_ideas: per prompt, the token ids of its ideas (None: the prompts are known by their codes only).
            passes: decoding passes (None: the config's `search.decode_passes`; see `IdeaTokenizer.decode_to_ids`).
            verify: decode later passes from the texts before as drafts (`story_decoding.decode_stories`).
            goal_codes: (B, L) per prompt, the codes of the goal its plans were searched toward (None: no goal).
            goal_ideas: per prompt, the goal's token ids. A plan whose last idea has the goal's codes arrived at
                the goal, whose text is known: that idea is written as the goal sentence, not decoded. (Its decoding
                would write the goal's event with the story's guesses: "Mia and Mia lived happily ever after." for
                the goal "Mia and Max lived happily ever after.") No idea reads the last one, so the others keep
                their texts.

        Returns:
            Per prompt, per plan, the planned ideas' texts.
        """
        n = candidates or self.cfg.search.decode_candidates
        docs = [torch.cat([prompt_codes[i].cpu(), p.codes.cpu()]) for i, per in enumerate(plans) for p in per]
        known = None if prompt_ideas is None else [prompt_ideas[i] for i, per in enumerate(plans) for _ in per]
        passes = self.cfg.search.decode_passes if passes is None else passes
        if not docs:
            return [[] for _ in plans]
        codes = Codes.from_flat(torch.cat(docs), [len(d) for d in docs], self.tokenizer.codebook_sizes)
        decoded = self._decode(codes, prompt_codes.shape[1], n, seed, known, passes, verify)
        it = iter(decoded)
        texts = [[next(it) for _ in per] for per in plans]
        if goal_codes is not None and goal_ideas is not None:
            for i, per in enumerate(plans):
                goal = goal_codes[i].cpu()
                for plan, ideas in zip(per, texts[i]):
                    if ideas and torch.equal(plan.codes[-1].cpu(), goal[: plan.codes.shape[1]]):
                        ideas[-1] = self.tokenizer.bpe.decode(goal_ideas[i])
        return texts

    def _decode(
        self, codes: Codes, t: int, n: int, seed: int, known: list | None, passes: int, verify: bool
    ) -> list[list[str]]:
        """Per document, its ideas after the first `t`, decoded; the best of `n` candidates when n > 1."""
        tok = self.tokenizer
        gist = codes.flat()[:, 0]  # each idea's planned level-1 code

        def follows_plan(rows: torch.Tensor, found: list[list[list[int]]]) -> torch.Tensor:
            """(C, R) True where a candidate re-encodes to its idea's planned level-1 code (the gist). Finer
            levels do not vote: a plan's details are often wrong where the story fixed them (a new name),
            and the decoder's greedy reading of the story is the better guide."""
            flat = [ids for cand in found for ids in cand]  # candidate-major
            again = tok.encode_ideas([ids or [tok.bpe.eos_id] for ids in flat])[:, 0]
            agree = (again == repeat(gist[rows], "r -> (c r)", c=len(found))) & torch.tensor([bool(i) for i in flat])
            return rearrange(agree, "(c r) -> c r", c=len(found))

        docs, _ = tok.decode_stories(
            codes,
            known=known,
            passes=passes,
            seed=seed,
            candidates=n,
            accept=follows_plan,
            verify=verify,
            states=self.idea_states(codes),
        )
        return [tok.bpe.decode_batch(doc[t:]) for doc in docs]

    def search_settings(
        self,
        ideas: int | None = None,
        beams: int | None = None,
        diverse_groups: int | None = None,
        sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        num_samples: int = 1,
        allow_end: bool | None = None,
        seed: int = 0,
    ) -> SearchConfig:
        """The run's search config with a command's settings on top (`generate` and `rollout` share them).

        `ideas`, `beams` and `allow_end` default to the run's search config; `diverse_groups` to 1 and the
        sampling settings to this signature's values. Every given value is checked, whether or not it takes
        effect (beams when sampling too).

        Raises:
            UserError / TypeError: one line naming the setting.
        """
        check_int("seed", seed, 0, MAX_SEED)
        bounded = (
            ("sentences", ideas, MAX_IDEAS),
            ("beams", beams, MAX_BEAMS),
            ("diverse_groups", diverse_groups, MAX_BEAMS),
        )
        for name, value, high in bounded:
            if value is not None:
                check_int(name, value, 1, high)
        s = dataclasses.replace(self.cfg.search)
        if ideas is not None:
            s.max_ideas = ideas
        if allow_end is not None:
            s.allow_end = allow_end
        # Sampling settings are checked whether or not `sample` uses them: a wrong value is an error either way.
        SearchConfig(temperature=temperature, top_p=top_p, top_k=top_k, num_samples=num_samples).validate()
        if sample:
            s.num_beams, s.diverse_groups = 1, 1
            s.temperature, s.top_p, s.top_k, s.num_samples = temperature, top_p, top_k, num_samples
        else:
            s.temperature = 0.0
            s.num_beams = beams if beams is not None else s.num_beams
            s.diverse_groups = diverse_groups if diverse_groups is not None else 1
        s.validate()
        return s

    def generate(
        self,
        prompt: str,
        sentences: int | None = None,
        beams: int | None = None,
        diverse_groups: int | None = None,
        sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        num_samples: int = 1,
        goal: str | None = None,
        allow_end: bool | None = None,
        decode_candidates: int | None = None,
        decode_passes: int | None = None,
        seed: int = 0,
        n_best: int | None = None,
        progress: bool = False,
    ) -> Generation:
        """Plan and write a continuation of `prompt`.

        `sentences`, `beams`, `allow_end` and the decoding settings default to the run's `search` config;
        `diverse_groups` defaults to 1 and the sampling settings to this signature's values, not the config's.

        Args:
            prompt: the text to continue (may be empty: the planner starts a document).
            sentences: new ideas at most.
            beams: beam width (ignored when sampling).
            diverse_groups: diverse beam search groups.
            sample: sample plans (temperature, top_p, top_k, num_samples) instead of beam search.
            goal: a final sentence the plan should arrive at.
            allow_end: let the planner end the document before `sentences` ideas (default: the config's).
            decode_candidates: decodings per planned idea, the one that follows the plan kept (see `expand`).
            decode_passes: decoding passes over the plan (see `expand`; 0: until nothing changes).
            seed: sampling seed.
            n_best: how many of the searched plans (best first) are decoded and returned (None: all of them;
                decoding costs time in proportion).
            progress: show the plan search's progress on stderr.
        """
        prompt = normalize_text(check_text("prompt", prompt))
        if goal is not None:
            goal = normalize_text(check_text("goal", goal))
        s = self.search_settings(
            sentences, beams, diverse_groups, sample, temperature, top_p, top_k, num_samples, allow_end, seed
        )
        if n_best is not None:
            check_int("n_best", n_best, 1)
        if decode_candidates is not None:
            s.decode_candidates = decode_candidates
        if decode_passes is not None:
            s.decode_passes = decode_passes
        s.validate()
        codes = self.tokenizer.encode([prompt])
        prompt_codes = codes.ids[:, : int(codes.mask.sum()), : self.levels]
        goal_codes = None
        if goal is not None:
            g = self.tokenizer.encode([goal])
            if int(g.mask.sum()) != 1:
                raise UserError(f"the goal must be one sentence (idea), it has {int(g.mask.sum())}")
            goal_codes = g.ids[:, 0, : self.levels]
        plans = self.plans(prompt_codes, goal_codes, s, seed, progress)
        if n_best is not None:
            plans = [per[:n_best] for per in plans]
        texts = self.expand(
            prompt_codes,
            plans,
            s.decode_candidates,
            seed,
            [self.tokenizer.split(prompt)],
            s.decode_passes,
            goal_codes=goal_codes,
            goal_ideas=None if goal is None else [self.tokenizer.split(goal)[0]],
        )
        texts = texts[0]
        out = [
            PlannedText(p.codes.tolist(), ideas, p.logprob, p.score, p.ended, p.idea_logprobs)
            for p, ideas in zip(plans[0], texts)
        ]
        return Generation(prompt, prompt_codes[0].tolist(), out)
