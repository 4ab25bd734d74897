"""Training-free token reducers: TokenGrid -> Carrier, registered by name.

    from reducers import get_reducer
    carrier, state = get_reducer("holitom")(grid, budget, state=state, query=None)
"""
from .base import (REDUCERS, Carrier, ReducerInputError, TokenGrid, cat_carriers, get_reducer,  # noqa: F401
                   grid_positions, keep_tokens, merge_groups, register)
from . import (pool2d, framemerge, tome, divprune, fastervlm, visionzip, dycoke, holitom,  # noqa: F401
               fastvid, prunevid, carrier, keyframe, residual_gate, query)  # (importing registers them)
from .carrier import CarrierMemory  # noqa: F401

METHODS = tuple(sorted(REDUCERS))
TEMPORAL = ("holitom", "dycoke", "framemerge", "carrier", "residual_gate", "keyframe")
