"""Training-free token reducers: TokenGrid -> Carrier, registered by name."""
from .base import REDUCERS, Carrier, ReducerInputError, TokenGrid, get_reducer, register  # noqa: F401
from . import pool2d, framemerge  # noqa: F401  (register the methods)
