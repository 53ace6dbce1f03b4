"""The code MLflow logs with the model and runs to load it (models from code, no pickle)."""

from mlflow.models import set_model

from nextframe.ops.serving import RolloutModel

set_model(RolloutModel())
