"""The served model as it was before the compiled rollout (`serve_latency.py`'s other side):
MLflow's tensor signature, so the scoring server copies and casts every number of the nested
lists; the rollout eager, op by op; the answer a float array MLflow writes out as JSON.
Logged as code, as `nextframe.ops.served_model` is."""

from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from nextframe.ops.registry import PREDICTOR_ARTIFACT


class EagerRolloutModel(PythonModel):
    def load_context(self, context) -> None:
        from nextframe.model import load_predictor

        self.predictor = load_predictor(context.artifacts[PREDICTOR_ARTIFACT])

    def predict(self, context, model_input, params=None):
        import numpy as np
        from mlflow.exceptions import MlflowException

        from nextframe.domains.video.domain import check_request
        from nextframe.errors import NextframeError
        from nextframe.rollout import eager_rollout

        frames = np.asarray(
            model_input["context"] if isinstance(model_input, dict) else model_input
        )
        horizon = int((params or {}).get("horizon", self.predictor.horizon))
        try:
            unit_frames = check_request(frames, horizon, self.predictor.frames)
        except (NextframeError, TypeError, ValueError) as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None
        return eager_rollout(self.predictor, unit_frames, horizon)


set_model(EagerRolloutModel())
