"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class GrpoLabError(Exception):
    """Bad input or an unusable environment; the message says what to do."""


class ConfigError(GrpoLabError):
    """A flag value, or a combination of them, that cannot run."""


class ModelNotFoundError(GrpoLabError):
    """A model name that is neither built in, a local path, nor reachable on the hub."""


class Terminated(BaseException):
    """SIGTERM arrived (kill, timeout, a cluster's scheduler); unwinds like Ctrl-C, so cleanups run."""
