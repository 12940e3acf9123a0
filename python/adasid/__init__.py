"""adasid: a semantic-ID index for generative retrieval.

Open a database folder (its last published commit, read-only, so a writer
in another process goes on) or a snapshot file, then ask which items lie under a SID prefix, which
tokens may follow it, and fill a whole beam step's token mask in one call::

    import numpy as np
    import adasid

    index = adasid.open("shop.db")          # or adasid.open_snapshot("shop.snap")
    index.items([3, 17])                    # numpy uint32 item ids
    index.next_tokens([3, 17])              # [5, 256]: 256 = K, a masked behavior token
    index.allowed_mask(np.array([[3], [4]]))  # bool (2, K + 1)

Tokens are written as mask columns: a semantic token ``t < K`` is ``t``, the
masked behavior token is ``K``, the disambiguation counter is itself.
``adasid.hf.SidLogitsProcessor`` constrains Hugging Face ``generate`` with it.
"""

from ._adasid import SidView, create, open, open_snapshot

__all__ = ["SidView", "create", "open", "open_snapshot"]
