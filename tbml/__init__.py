"""tbml: find trade-based money laundering in trade invoices and the transfers that pay for them."""

__version__ = "0.1.0"

from tbml.errors import TBMLError  # noqa: E402

__all__ = ["TBMLError", "__version__"]
