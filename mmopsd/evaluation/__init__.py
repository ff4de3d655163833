"""Evaluation: greedy held-out episodes and what they are summarised into.

:mod:`~mmopsd.evaluation.core` plays and summarises episodes (success with its interval,
turns, invalid actions, grounding, expert agreement); :mod:`~mmopsd.evaluation.tasks` is the
one type that says what to evaluate (:class:`EvalTask`: used by suites, a config's ``ood``
and ``retain`` lists and the command line's defaults); :mod:`~mmopsd.evaluation.suites`
names lists of tasks; :mod:`~mmopsd.evaluation.leaderboard` keeps a file of rows;
:mod:`~mmopsd.compare` runs methods over seeds; :mod:`~mmopsd.evaluation.report`
renders every Markdown table and plot.
"""

from mmopsd.evaluation.core import EvalResult, evaluate, expert_agreement, summarise
from mmopsd.evaluation.tasks import EvalTask

__all__ = ["EvalResult", "EvalTask", "evaluate", "expert_agreement", "summarise"]
