"""Run several `hiertok` commands one after another in one process: `python cli_sequence.py ARGS... ";" ARGS...`.

The two-process tests launch torchrun once for all their runs: each launch pays two processes' imports of torch,
x-transformers and accelerate (about 4 s each here), more than a toy run's training. The process group is left
once, after the last command (`hiertok.cli.main` leaves it after each command, which would end the next one's).
"""

import sys

from hiertok import cli


def main(argv: list[str]) -> int:
    commands, current = [], []
    for arg in argv:
        if arg == ";":
            commands.append(current)
            current = []
        else:
            current.append(arg)
    commands.append(current)
    leave = cli._leave_process_group
    cli._leave_process_group = lambda: None
    for args in commands:
        code = cli.main(args)
        if code:
            return code
    leave()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
