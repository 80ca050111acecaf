"""Downstream transfer: learned invariances, baselines, metrics and derived tasks (pure PyTorch)."""

from amortinv._lazy import lazy_exports

_EXPORTS = {
    "TaskData": "amortinv.transfer.data",
    "Standardiser": "amortinv.transfer.data",
    "make_task": "amortinv.transfer.data",
    "carve_validation": "amortinv.transfer.data",
    "stack_dataset": "amortinv.transfer.data",
    "finetune": "amortinv.transfer.finetuning",
    "InvarianceFit": "amortinv.transfer.learn",
    "search_invariance": "amortinv.transfer.learn",
    "features_and_tangents": "amortinv.transfer.learn",
    "DescriptorParameter": "amortinv.transfer.learn",
    "SearchSettings": "amortinv.transfer.settings",
    "TransferSettings": "amortinv.transfer.settings",
    "LAMBDAS": "amortinv.transfer.settings",
    "classification_metrics": "amortinv.transfer.metrics",
    "regression_metrics": "amortinv.transfer.metrics",
    "r2_uniform": "amortinv.transfer.metrics",
    "r2_pooled": "amortinv.transfer.metrics",
    "LinearHead": "amortinv.transfer.probe",
    "ProbeFit": "amortinv.transfer.probe",
    "fit_linear": "amortinv.transfer.probe",
    "fit_probe": "amortinv.transfer.probe",
    "ridge_loo_loss": "amortinv.transfer.probe",
    "ridge_gcv_loss": "amortinv.transfer.probe",
    "ridge_fit": "amortinv.transfer.probe",
    "run_transfer": "amortinv.transfer.protocol",
    "TASKS": "amortinv.transfer.tasks",
    "derive_task": "amortinv.transfer.tasks",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
