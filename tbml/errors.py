"""Errors a user can act on. The CLI prints the message in one line, without a traceback."""


class TBMLError(Exception):
    """Base class: the message names the file, row and column where it can, and what was expected."""


class InputFileError(TBMLError):
    """A whole file cannot be used: missing, unreadable, wrong encoding, empty, required column absent."""


class MappingError(TBMLError):
    """A column mapping YAML is malformed or names something that does not exist."""


class ConfigError(TBMLError):
    """A config YAML is malformed or holds a value of the wrong kind."""


class StrictModeError(TBMLError):
    """Rows were quarantined while strict mode asked for none."""
