"""hiertok: text -> multi-level discrete idea codes -> text, and a planner that plans over the codes."""

__version__ = "0.1.0"
