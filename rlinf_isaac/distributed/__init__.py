"""torch.distributed among actor ranks: data-parallel gradient averaging and FSDP2 sharding."""

from rlinf_isaac.distributed import fsdp

__all__ = ["fsdp"]
