"""The planner: a causal transformer over multi-level idea codes (`model.py`), beam / diverse / sampled / goal
search over the next ideas' codes (`search.py`), the run config that inference and training share
(`config.py`), the code corpus cached per tokenizer (`shards.py`, `windows.py`) and training (`train.py`)."""
