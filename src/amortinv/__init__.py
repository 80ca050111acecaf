"""amortinv: amortised invariance learning for contrastive self-supervision (ICLR 2023).

Pre-train one encoder ``h(x; i)`` conditioned on an invariance descriptor ``i`` in [0, 1]^K,
then learn a task-specific ``i`` with a linear head downstream.
"""

from amortinv.spaces import BUILTIN_SPACES, InvarianceSpace, load_space, parse_descriptors, quantise

__version__ = "0.1.0"
__all__ = ["InvarianceSpace", "load_space", "quantise", "parse_descriptors", "BUILTIN_SPACES", "__version__"]
