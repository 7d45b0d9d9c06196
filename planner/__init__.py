"""The planner: a transformer over multi-level idea codes with beam search (issue 3, not built yet).

Kept as an empty package so the layout the design fixes is in place; nothing here is importable API yet.
"""
