"""Errors a user can act on. The CLI prints the message in one line, without a traceback."""


class TBMLError(Exception):
    """Base class: the message names the file, row and column where it can, and what was expected."""


class InputFileError(TBMLError):
    """A whole file cannot be used: missing, unreadable, wrong encoding, empty, required column absent."""


class AllRowsQuarantinedError(InputFileError):
    """Every row of a file was quarantined: a whole-file mistake (delimiter, decimal mark, date format).
    ``result`` holds the load, so the quarantine can still be written for the user to look at."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class OutputError(TBMLError):
    """An output cannot be written: a file where a folder should be, no permission, a full disk."""


class MappingError(TBMLError):
    """A column mapping YAML is malformed or names something that does not exist."""


class ConfigError(TBMLError):
    """A config YAML is malformed or holds a value of the wrong kind."""


class StrictModeError(TBMLError):
    """Rows were quarantined while strict mode asked for none."""
