"""The one exception type the CLI reports as one line (exit code 2) instead of a traceback.

Library code raises `UserError` (or a subclass: `ConfigError`, `RunDirError`) where the input is at fault: a
flag, a config key, a file, an argument of the API. Its message names the file, key or value. Any other
exception is a bug and the CLI shows its traceback. `UserError` is a `ValueError`, so code that catches bad
values the standard way keeps working.
"""


class UserError(ValueError):
    """Bad input (a value, a file, a config key), phrased as one line for the user."""


# What the CLI prints as one line: bad input, and a file the OS cannot give (missing, a directory, no permission).
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, OSError)
