"""Exceptions the CLI reports as one line (exit code 2) instead of a traceback.

Library code raises these with a message that names the file, key or value at fault.
"""

from hiertok.config import ConfigError
from hiertok.training import RunDirError

# ValueError covers bad values and UnicodeDecodeError; OSError covers missing files and permissions.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, RunDirError, ValueError, OSError)
