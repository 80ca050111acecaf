"""Downstream transfer: learned invariances, baselines, metrics and derived tasks (pure PyTorch)."""

from amortinv.transfer.data import Standardiser, TaskData, carve_validation, encode, make_task, stack_dataset
from amortinv.transfer.finetune import finetune
from amortinv.transfer.learn import InvarianceFit, SearchSettings, features_and_tangents, search_invariance
from amortinv.transfer.metrics import classification_metrics, r2_pooled, r2_uniform, regression_metrics
from amortinv.transfer.probe import LAMBDAS, LinearHead, ProbeFit, fit_linear, fit_probe, ridge_loo_loss
from amortinv.transfer.protocol import TransferSettings, run_transfer
from amortinv.transfer.tasks import TASKS, derive_task

__all__ = [
    "TaskData", "Standardiser", "make_task", "carve_validation", "stack_dataset", "encode", "search_invariance",
    "SearchSettings", "InvarianceFit", "fit_probe", "fit_linear", "LinearHead", "ProbeFit", "LAMBDAS", "ridge_loo_loss",
    "features_and_tangents", "finetune", "run_transfer", "TransferSettings",
    "classification_metrics", "regression_metrics", "r2_uniform", "r2_pooled", "derive_task", "TASKS",
]
