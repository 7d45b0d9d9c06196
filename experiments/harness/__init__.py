"""The experiment harness: grids of cells (a tokenizer and a planner trained and evaluated per cell), their
command-line options and plots. It lives outside the library, which never imports it; its plots need the
`[experiments]` extra (matplotlib)."""
