"""Few-shot evaluation: seeded episodes, closed-form heads, per-episode learned invariance, low-shot regression."""

from amortinv.fewshot.episodes import Episode, EpisodeSampler, low_shot_split
from amortinv.fewshot.evaluate import FewShotSettings, mean_ci, run_episodes, run_lowshot
from amortinv.fewshot.heads import HEADS, LogisticHead, PrototypeHead, RidgeHead, support_objective
from amortinv.fewshot.invariance import EpisodeSearch, FeatureCache, learn_support_descriptor

__all__ = [
    "Episode", "EpisodeSampler", "low_shot_split", "FewShotSettings", "run_episodes", "run_lowshot", "mean_ci", "HEADS",
    "RidgeHead", "PrototypeHead", "LogisticHead", "support_objective", "EpisodeSearch", "FeatureCache", "learn_support_descriptor",
]
