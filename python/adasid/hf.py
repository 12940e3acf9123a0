"""Constrained decoding of semantic IDs inside Hugging Face ``generate``.

``SidLogitsProcessor`` masks, at every step, each beam's tokens that do not
extend its SID prefix to one that some item has: one Rust call per step for
all beams, then two tensor operations. It works with encoder-decoder (T5)
and decoder-only (GPT-2, Qwen-style) models, with a prompt before the SID
(the processor takes the sequence length at the first step as where the SID
starts), and ends every SID with the end-of-sequence token when one is
given::

    from transformers import LogitsProcessorList
    from adasid.hf import SidLogitsProcessor

    index = adasid.open("beauty.db")
    proc = SidLogitsProcessor(index, tokenizer, eos_token_id=tokenizer.eos_token_id)
    out = model.generate(**inputs, num_beams=50, num_return_sequences=50,
                         max_new_tokens=index.full_len + 1,
                         logits_processor=LogitsProcessorList([proc]))
    keys = proc.keys(out)          # item key per returned sequence (None: not an item)

SID tokens are looked up by name: ``token_format`` (default ``"<{letter}_{value}>"``,
LETTER/TIGER's ``<a_12>``), with ``letter`` the position's letter (``a`` for the
first) and ``value`` the token in the column spelling (masked behavior token:
K; disambiguation token: the counter).
"""

from __future__ import annotations

import string
import warnings
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch

try:  # transformers is optional for the index itself, required here
    from transformers import LogitsProcessor
except ImportError as e:  # pragma: no cover - import guard
    raise ImportError("adasid.hf needs transformers: pip install 'adasid[hf]'") from e

from . import SidView
from ._adasid import VocabMap

__all__ = ["SidLogitsProcessor", "sid_vocabulary"]


def sid_vocabulary(index: SidView, token_format: str = "<{letter}_{value}>",
                   letters: str = string.ascii_lowercase) -> list:
    """The token names a vocabulary needs for every SID of ``index``: per
    position, the semantic tokens ``0..K`` (``K``, the masked token, only at
    behavior positions) and the counters in use at the disambiguation position."""
    names = []
    first_behavior = index.levels - index.behavior
    for pos in range(index.full_len):
        if pos == index.levels:
            values = range(index.max_counter() + 1)
        else:
            values = range(index.k + (1 if pos >= first_behavior else 0))
        names.extend(token_format.format(letter=letters[pos], value=v) for v in values)
    return names


class SidLogitsProcessor(LogitsProcessor):
    """Masks every token a beam's SID prefix does not allow (see the module docs).

    ``vocab`` is a tokenizer (anything with ``get_vocab()``) or a mapping from
    token name to id. It must hold every SID token the index uses, or
    construction fails with a ``ValueError`` naming the missing ones. A beam
    whose prefix no item has (it can only arise from tokens written outside
    this processor) is masked fully, with one warning per processor.
    """

    def __init__(self, index: SidView, vocab: Union[Mapping[str, int], object], *,
                 eos_token_id: Optional[int] = None,
                 token_format: str = "<{letter}_{value}>",
                 letters: str = string.ascii_lowercase):
        if len(letters) < index.full_len:
            raise ValueError(f"{index.full_len} SID positions need {index.full_len} letters")
        names = vocab.get_vocab() if hasattr(vocab, "get_vocab") else dict(vocab)
        self.index = index
        self.eos_token_id = eos_token_id
        k = index.k
        wanted = sid_vocabulary(index, token_format, letters)
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ValueError(
                f"the vocabulary lacks {len(missing)} of the {len(wanted)} SID tokens this "
                f"index uses (first: {missing[:5]}); add them to the tokenizer "
                f"(token_format {token_format!r})")
        # Per position: column -> vocab id (-1: no such token).
        width = max(k + 1, index.max_counter() + 1)
        ids = np.full((index.full_len, width), -1, dtype=np.int64)
        for pos in range(index.full_len):
            for value in range(width):
                name = token_format.format(letter=letters[pos], value=value)
                if name in names:
                    ids[pos, value] = names[name]
        self._map = VocabMap(ids, eos_token_id)
        self._start = None
        self._last = None
        self._warned = False

    def reset(self) -> None:
        """Says that the next call starts a new ``generate``. Without it, a
        call whose sequences are not one token longer than the last call's
        starts one (what every new ``generate`` call does unless its prompt
        is exactly one token longer than the last call's output)."""
        self._last = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        length = input_ids.shape[1]
        if self._last is None or length != self._last + 1:
            self._start = length  # a new generate call: the SID starts here
        self._last = length
        ids = input_ids.detach().cpu().numpy().astype(np.int64, copy=False)
        on_cpu = scores.device.type == "cpu" and scores.dtype == torch.float32
        if on_cpu:
            # One pass in Rust: a new score matrix, disallowed entries -inf.
            masked, empty = self._map.masked(self.index, ids, self._start, scores.detach().numpy())
        else:
            flat, empty = self._map.allowed(self.index, ids, self._start, scores.shape[1])
        if empty and not self._warned:
            self._warned = True
            warnings.warn(
                f"{empty} beam(s) at SID position {length - self._start} spell a prefix no item "
                "has (tokens written outside this processor); they are masked fully",
                RuntimeWarning, stacklevel=2)
        if on_cpu:
            return torch.from_numpy(masked)
        keep = torch.from_numpy(flat).to(scores.device)
        out = torch.full_like(scores, -float("inf"))
        out.view(-1)[keep] = scores.reshape(-1)[keep]
        return out

    def sid_of(self, sequence: Sequence[int]) -> Optional[list]:
        """The SID (column spelling) a generated sequence spells after the
        point where the last ``generate`` call's SID started; ``None`` when a
        token there is not a SID token of its position."""
        ids = np.asarray(sequence, dtype=np.int64)[self._start: self._start + self.index.full_len]
        if len(ids) < self.index.full_len:
            return None
        cols = self._map.columns(ids)
        return None if min(cols) < 0 else cols

    def keys(self, sequences) -> list:
        """The item key each generated sequence names (``None`` where it names
        none), for the output of the last ``generate`` call."""
        rows = sequences.tolist() if hasattr(sequences, "tolist") else list(sequences)
        out = []
        for row in rows:
            sid = self.sid_of(row)
            out.append(None if sid is None else self.index.lookup(sid))
        return out
