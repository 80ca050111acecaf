"""amortinv: amortised invariance learning for contrastive self-supervision (ICLR 2023).

Pre-train one encoder ``h(x; i)`` conditioned on an invariance descriptor ``i`` in [0, 1]^K,
then learn a task-specific ``i`` with a linear head downstream.
"""

from amortinv._lazy import lazy_exports

__version__ = "0.1.0"
_EXPORTS = {
    name: "amortinv.spaces"
    for name in ("InvarianceSpace", "load_space", "quantise", "parse_descriptors", "BUILTIN_SPACES")
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [*_EXPORTS, "__version__"]
