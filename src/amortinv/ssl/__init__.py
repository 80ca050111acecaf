"""Self-supervised pre-training: pure losses, queues, heads, gather, the methods' objectives (no Lightning), and the LightningModules."""

from amortinv._lazy import lazy_exports

_EXPORTS = {
    "gather": "amortinv.ssl.distributed",
    "gather_no_grad": "amortinv.ssl.distributed",
    "DescriptorHeads": "amortinv.ssl.heads",
    "mlp": "amortinv.ssl.heads",
    "nt_xent": "amortinv.ssl.losses",
    "info_nce_queue": "amortinv.ssl.losses",
    "moco_v3_contrastive": "amortinv.ssl.losses",
    "moco_v3_loss": "amortinv.ssl.losses",
    "LARS": "amortinv.ssl.optim",
    "build_optimizer": "amortinv.ssl.optim",
    "momentum_schedule": "amortinv.ssl.optim",
    "momentum_update": "amortinv.ssl.optim",
    "warmup_cosine": "amortinv.ssl.optim",
    "DescriptorQueues": "amortinv.ssl.queues",
    "SimCLRObjective": "amortinv.ssl.objectives",
    "MoCoV2Objective": "amortinv.ssl.objectives",
    "MoCoV3Objective": "amortinv.ssl.objectives",
    "OBJECTIVES": "amortinv.ssl.objectives",
    "PretrainConfig": "amortinv.ssl.config",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
