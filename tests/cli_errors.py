"""What a command that refuses its input writes: one error line, no traceback."""


def error_line(err: str, prog: str = "hiertok") -> str:
    """The one `PROG: error: ...` line of a failed command's stderr, lowercased (asserts there is exactly one,
    and no traceback)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}: error:")]
    assert len(lines) == 1, err
    return lines[0].lower()
