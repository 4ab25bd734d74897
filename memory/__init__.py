"""The on-disk memory bank and retrieval."""
from .bank import BankError, CarrierRecord, Memory, MemoryBank  # noqa: F401
