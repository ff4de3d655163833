"""Gymnasium wrappers that make any environment one mmopsd can train on.

Each changes one thing: :class:`TextActions` (text to actions, invalid-action feedback),
:class:`DescribeObservations` (observations to text and images), :class:`PrivilegedInfo`
(``info["privileged"]`` from the unwrapped env), :class:`SeedSplits` (disjoint train and test
seeds), :class:`SuccessInfo` (``info["success"]``). :func:`wrap` stacks them in order.
"""

from mmopsd.envs.wrappers.observations import DescribeObservations, printable
from mmopsd.envs.wrappers.privileged import PrivilegedInfo
from mmopsd.envs.wrappers.splits import SeedSplits
from mmopsd.envs.wrappers.stack import wrap
from mmopsd.envs.wrappers.success import SuccessInfo, positive_reward
from mmopsd.envs.wrappers.text_actions import TextActions, with_note

__all__ = [
    "DescribeObservations",
    "PrivilegedInfo",
    "SeedSplits",
    "SuccessInfo",
    "TextActions",
    "positive_reward",
    "printable",
    "with_note",
    "wrap",
]
