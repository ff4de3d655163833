"""Experiment tracking through the libraries made for it: ``run.report_to`` names them
(``tensorboard``, ``wandb``, ``trackio``; none by default). Every record of a run's
``metrics.jsonl`` is logged as scalars at its step, each evaluation's tables as a table, the
learning curve as an image, and a few episodes of each evaluation as text. Each backend is an
optional extra; a missing one is a one-line error before the run starts."""

from mmopsd.tracking.base import (
    TRACKERS,
    Tracker,
    Trackers,
    check_report_to,
    flatten,
    open_trackers,
)
from mmopsd.tracking.tensorboard_writer import TensorBoardTracker
from mmopsd.tracking.trackio_run import TrackioTracker
from mmopsd.tracking.wandb_run import WandbTracker

__all__ = [
    "TRACKERS",
    "TensorBoardTracker",
    "Tracker",
    "Trackers",
    "TrackioTracker",
    "WandbTracker",
    "check_report_to",
    "flatten",
    "open_trackers",
]
