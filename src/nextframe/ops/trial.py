"""The train stage's side of a tuning trial (`nextframe tune`, `nextframe.ops.tune`).

A tune worker runs each trial as a DVC experiment and names the trial in the environment of
its stages. The train stage then reports the objective after every epoch to the trial in the
study's storage, and stops cleanly when the study's pruner says so. With none of these
variables set (every run that is not a trial) nothing here is imported."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from nextframe.errors import NextframeError

STORAGE_ENV = "NEXTFRAME_TUNE_STORAGE"
STUDY_ENV = "NEXTFRAME_TUNE_STUDY"
TRIAL_ENV = "NEXTFRAME_TUNE_TRIAL"  # the trial's number in its study
PRUNER_ENV = "NEXTFRAME_TUNE_PRUNER"  # one of PRUNERS
PRUNERS = ("median", "halving", "none")
# What each trial reports per epoch and the study minimises (README, "Tuning").
OBJECTIVE = "val_mse"
PRUNED_ATTR = "pruned_at_epoch"  # a trial user attribute: the worker tells the study PRUNED


def make_pruner(name: str):
    """The study's pruner: Optuna keeps none in its storage, so worker and stage each build
    it from its name."""
    import optuna

    if name == "median":  # worse than the median of the trials before at the same epoch
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class TrialName:
    storage: str
    study: str
    number: int
    pruner: str = "median"

    def tags(self) -> dict[str, str]:
        """The MLflow run's tags that tie it to its trial."""
        return {"optuna.study": self.study, "optuna.trial": str(self.number)}


def trial_from_env() -> TrialName | None:
    """The trial this stage runs for, or None outside `nextframe tune`."""
    names = [os.environ.get(env) for env in (STORAGE_ENV, STUDY_ENV, TRIAL_ENV)]
    if not any(names):
        return None
    storage, study, number = names
    if not (storage and study and number and number.isdigit()):
        raise NextframeError(
            f"{STORAGE_ENV}, {STUDY_ENV} and {TRIAL_ENV} name a tuning trial together: "
            "set all three or none"
        )
    pruner = os.environ.get(PRUNER_ENV, "median")
    if pruner not in PRUNERS:
        raise NextframeError(f"{PRUNER_ENV} must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    return TrialName(storage, study, int(number), pruner)


class TrialPruned(NextframeError):
    """The study's pruner stopped this trial: the run ends KILLED, tagged, with no outputs."""

    mlflow_status = "KILLED"

    def __init__(self, name: TrialName, epoch: int, value: float):
        super().__init__(
            f"trial {name.number} of study {name.study} pruned after epoch {epoch} "
            f"({OBJECTIVE} {value:.4g})"
        )
        self.mlflow_tags = {"optuna.pruned": "true", "optuna.pruned_at_epoch": str(epoch)}


def trial_reporter(name: TrialName, score: Callable[[dict], float]):
    """The Keras callback of a trial (Keras imported only here: `nextframe tune` itself needs
    none)."""
    import keras

    class TrialReporter(keras.callbacks.Callback):
        """After each epoch: the objective (`score()`) into the logs (so MLflow and the history
        record it), reported to the trial; the trial pruned if the study's pruner says so."""

        def __init__(self, name: TrialName, score: Callable[[dict], float]):
            super().__init__()
            import optuna

            self.name = name
            self.score = score
            where = f"trial {name.number} of study {name.study}"
            try:
                storage = optuna.storages.RDBStorage(name.storage, skip_table_creation=True)
                study = optuna.load_study(
                    study_name=name.study, storage=storage, pruner=make_pruner(name.pruner)
                )
            except KeyError:
                raise NextframeError(f"{where}: no such study in its storage") from None
            except Exception as exc:  # sqlalchemy's errors: the storage is not reachable
                reason = type(exc).__name__
                raise NextframeError(f"{where}: cannot open its storage ({reason})") from None
            found = [t for t in study.get_trials(deepcopy=False) if t.number == name.number]
            if not found:
                raise NextframeError(f"{where}: no such trial")
            self.trial = optuna.Trial(study, found[0]._trial_id)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            value = float(self.score(logs))
            logs[OBJECTIVE] = value
            self.trial.report(value, step=epoch + 1)
            if self.trial.should_prune():
                self.trial.set_user_attr(PRUNED_ATTR, epoch + 1)
                raise TrialPruned(self.name, epoch + 1, value)

    return TrialReporter(name, score)


def reporter_for(name: TrialName, params, predictor, val_windows):
    """The trial's reporter, with its domain's figure after each epoch (video: `val_mse`, the
    closed-loop MSE per frame on the val split, whatever `train.loss` is; radar: the masked
    validation loss, as no-data pixels have no MSE)."""
    from nextframe.domains import domain_of

    score = domain_of(predictor.frames).validation_score(predictor, params, val_windows)
    return trial_reporter(name, score)
