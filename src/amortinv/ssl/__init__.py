"""Self-supervised pre-training: pure losses, queues, heads, gather (no Lightning), and the methods."""

from amortinv.ssl.gather import gather, gather_no_grad
from amortinv.ssl.heads import DescriptorHeads, mlp
from amortinv.ssl.losses import info_nce_queue, moco_v3_contrastive, moco_v3_loss, nt_xent
from amortinv.ssl.optim import LARS, build_optimizer, momentum_schedule, momentum_update, warmup_cosine
from amortinv.ssl.queues import DescriptorQueues

__all__ = [
    "gather", "gather_no_grad", "DescriptorHeads", "mlp", "nt_xent", "info_nce_queue", "moco_v3_contrastive",
    "moco_v3_loss", "LARS", "build_optimizer", "momentum_schedule", "momentum_update", "warmup_cosine", "DescriptorQueues",
]
