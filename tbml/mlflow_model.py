"""The pyfunc model definition MLflow stores as source ("models from code"), so nothing is pickled."""

import mlflow

from tbml.registry import TBMLPyfunc

mlflow.models.set_model(TBMLPyfunc())
