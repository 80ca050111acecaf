"""Self-supervised pre-training: pure losses, queues, heads, gather (no Lightning), and the methods."""

from amortinv._lazy import lazy_exports

_EXPORTS = {
    "gather": "amortinv.ssl.distributed", "gather_no_grad": "amortinv.ssl.distributed",
    "DescriptorHeads": "amortinv.ssl.heads", "mlp": "amortinv.ssl.heads",
    "nt_xent": "amortinv.ssl.losses", "info_nce_queue": "amortinv.ssl.losses", "moco_v3_contrastive": "amortinv.ssl.losses", "moco_v3_loss": "amortinv.ssl.losses",
    "LARS": "amortinv.ssl.optim", "build_optimizer": "amortinv.ssl.optim", "momentum_schedule": "amortinv.ssl.optim", "momentum_update": "amortinv.ssl.optim", "warmup_cosine": "amortinv.ssl.optim",
    "DescriptorQueues": "amortinv.ssl.queues",
    "PretrainConfig": "amortinv.ssl.config",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
