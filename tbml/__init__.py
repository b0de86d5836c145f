"""tbml: find trade-based money laundering in trade invoices and the transfers that pay for them.

    import tbml
    tbml.generate_files("data/sample", n_invoices=20_000, seed=7, laundering_rate=0.02)
    result = tbml.score("invoices.csv", "transfers.csv", out_dir="alerts/")    # result.alerts, .entities
    info = tbml.train("reference/invoices.csv", "reference/transfers.csv")      # MLflow, alias challenger
    figures = tbml.evaluate_files("labelled.csv", "labelled_transfers.csv")
    tbml.validate_files("invoices.csv", out_dir="checks/")

Each is the function behind the command of the same name (``tbml.api``). Validation and evaluation keep
their ``_files`` names here: ``tbml.validate`` and ``tbml.evaluate`` are modules.
"""

__version__ = "0.2.0"

from tbml.errors import TBMLError  # noqa: E402

__all__ = ["TBMLError", "__version__", "validate_files", "score", "train", "evaluate_files", "generate_files"]


def validate_files(*args, **kwargs):
    """``tbml.api.validate_files``: load and check files, quarantine what fails."""
    from tbml.api import validate_files
    return validate_files(*args, **kwargs)


def score(*args, **kwargs):
    """``tbml.api.score_files``: rank invoice lines and payments by risk, with reasons."""
    from tbml.api import score_files
    return score_files(*args, **kwargs)


def train(*args, **kwargs):
    """``tbml.api.train_files``: fit the chain and register it in MLflow (or save it with ``save=``)."""
    from tbml.api import train_files
    return train_files(*args, **kwargs)


def evaluate_files(*args, **kwargs):
    """``tbml.api.evaluate_files``: tbml against both baselines on labelled files."""
    from tbml.api import evaluate_files
    return evaluate_files(*args, **kwargs)


def generate_files(*args, **kwargs):
    """``tbml.api.generate_files``: labelled synthetic invoices and transfers."""
    from tbml.api import generate_files as _generate
    return _generate(*args, **kwargs)
