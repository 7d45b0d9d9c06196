"""hiertok: text -> multi-level discrete idea codes -> text (and, later, planning over the codes)."""

__version__ = "0.1.0"
