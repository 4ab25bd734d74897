"""The one conversion between a reducer's Carrier (torch) and the bank's CarrierRecord (numpy, on disk).

    rec = to_record(carrier)                  # ingest: what MemoryBank.add stores (float16 tokens by default)
    carrier = to_carrier(bank.carrier(mid))   # ask: what a VLM answerer splices into its prompt

Tokens stay in their stored dtype on the CPU (float16, or float32 when stored so); the answerer casts them
once on its device. Positions come back as int64 (t, y, x), as the reducers made them.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from reducers.base import Carrier

from .bank import CarrierRecord

STORED_DTYPES = {"float16": np.float16, "float32": np.float32}


def to_record(carrier: Carrier, dtype: str = "float16") -> CarrierRecord:
    """Carrier (any device) -> CarrierRecord with tokens in `dtype` ("float16" or "float32")."""
    if dtype not in STORED_DTYPES:
        raise ValueError(f"carrier dtype must be one of {', '.join(STORED_DTYPES)}, not {dtype!r}")
    tok = carrier.tokens.detach().to("cpu", torch.float32).numpy().astype(STORED_DTYPES[dtype], copy=False)
    meta = torch.stack([carrier.pos, carrier.lo, carrier.hi], 0).to("cpu", torch.int32).numpy()
    return CarrierRecord(tok, meta[0], meta[1], meta[2], carrier.size.to("cpu", torch.int32).numpy())


def to_carrier(rec: Optional[CarrierRecord]) -> Optional[Carrier]:
    """CarrierRecord -> Carrier on the CPU (tokens keep the stored dtype; pos/lo/hi/size int64), or None."""
    if rec is None:
        return None
    meta = np.concatenate([rec.pos, rec.lo, rec.hi], axis=1).astype(np.int64)
    m = torch.from_numpy(meta)
    # records read by bank.carriers() sit in writable buffers of their own: wrapped as they are (one copy less on
    # every ask); read-only ones (bank.carrier(), a mapped file) are copied, since torch tensors must be writable
    tok = rec.tokens if rec.tokens.flags.writeable else np.array(rec.tokens, copy=True)
    return Carrier(torch.from_numpy(tok), m[:, 0:3], m[:, 3:6], m[:, 6:9],
                   torch.from_numpy(rec.size.astype(np.int64)))
