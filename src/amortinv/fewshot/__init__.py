"""Few-shot evaluation: seeded episodes, closed-form heads, per-episode learned invariance, low-shot regression."""

from amortinv._lazy import lazy_exports

_EXPORTS = {
    "Episode": "amortinv.fewshot.episodes",
    "EpisodeSampler": "amortinv.fewshot.episodes",
    "low_shot_split": "amortinv.fewshot.episodes",
    "FewShotSettings": "amortinv.fewshot.settings",
    "EpisodeSearch": "amortinv.fewshot.settings",
    "run_episodes": "amortinv.fewshot.evaluate",
    "run_lowshot": "amortinv.fewshot.evaluate",
    "mean_ci": "amortinv.fewshot.evaluate",
    "HEADS": "amortinv.fewshot.heads",
    "RidgeHead": "amortinv.fewshot.heads",
    "PrototypeHead": "amortinv.fewshot.heads",
    "LogisticHead": "amortinv.fewshot.heads",
    "support_objective": "amortinv.fewshot.heads",
    "FeatureCache": "amortinv.fewshot.invariance",
    "learn_support_descriptor": "amortinv.fewshot.invariance",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
