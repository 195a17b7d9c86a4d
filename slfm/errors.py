"""The one error type users see: a clear, one-line message naming the file or value at fault."""


class SlfmError(Exception):
    """A user-facing error; the CLI prints it as one line and exits non-zero."""
