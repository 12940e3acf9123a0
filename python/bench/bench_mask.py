"""Per-step mask cost of SidLogitsProcessor against the two ways Python
generative-retrieval repositories constrain beams, on one index, in one run:

* a nested dict trie walked per beam (LETTER / TIGER reimplementations),
* a dict from the prefix string '-'.join(ids) to the allowed next tokens
  (MiniOneRec),

both through transformers' PrefixConstrainedLogitsProcessor, as those repos
call it; then the share of a whole `generate` call each takes.

    python python/bench/bench_mask.py --items 1000000 --json
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers.generation.logits_process import PrefixConstrainedLogitsProcessor

import adasid
from adasid.hf import SidLogitsProcessor, sid_vocabulary

PAD, EOS = 0, 1
LETTERS = "abcdefgh"


def build(items, levels, k, seed, folder):
    rng = np.random.default_rng(seed)
    sids = rng.integers(0, k, size=(items, levels), dtype=np.int64)
    keys = [f"i{i}" for i in range(items)]
    t = time.perf_counter()
    view = adasid.create(Path(folder) / "bench.db", keys, sids, k=k)
    return view, keys, time.perf_counter() - t


def tries(view, keys, vocab):
    """The dict trie and the prefix-string dict, over token ids."""
    trie, by_string = {}, {}
    for key in keys:
        ids = [vocab[f"<{LETTERS[p]}_{v}>"] for p, v in enumerate(view.sid(key))]
        node = trie
        for i, token in enumerate(ids):
            node = node.setdefault(token, {})
            by_string.setdefault("-".join(map(str, ids[:i])), set()).add(token)
    return trie, {s: sorted(t) for s, t in by_string.items()}


def dict_trie_fn(trie, start):
    def allowed(batch_id, sent):
        node = trie
        for token in sent.tolist()[start:]:
            node = node.get(token, {})
        return list(node.keys()) or [EOS]
    return allowed


def string_fn(by_string, start):
    def allowed(batch_id, sent):
        return by_string.get("-".join(map(str, sent.tolist()[start:])), [EOS])
    return allowed


def median_us(f, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def step_inputs(view, keys, vocab, beams, depth, rng):
    rows = [view.sid(keys[i])[:depth] for i in rng.integers(0, len(keys), beams)]
    ids = [[PAD] + [vocab[f"<{LETTERS[p]}_{v}>"] for p, v in enumerate(r)] for r in rows]
    return torch.tensor(ids, dtype=torch.long), torch.zeros(beams, len(vocab))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--beams", type=str, default="20,100,500")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        view, keys, create_s = build(a.items, a.levels, a.k, 1, folder)
        names = ["<pad>", "</s>"] + sid_vocabulary(view) + [f"w{i}" for i in range(20)]
        vocab = {n: i for i, n in enumerate(names)}
        t = time.perf_counter()
        trie, by_string = tries(view, keys, vocab)
        tries_s = time.perf_counter() - t
        rows = []
        for beams in map(int, a.beams.split(",")):
            row = {"beams": beams}
            for depth in range(view.full_len):
                ids, scores = step_inputs(view, keys, vocab, beams, depth, rng)
                ours = SidLogitsProcessor(view, vocab, eos_token_id=EOS)
                ref = PrefixConstrainedLogitsProcessor(dict_trie_fn(trie, 1), beams)
                mini = PrefixConstrainedLogitsProcessor(string_fn(by_string, 1), beams)

                def run_ours():
                    # Step `depth` of a generation whose SID starts at 1.
                    ours._start, ours._last = 1, ids.shape[1] - 1
                    return ours(ids, scores)

                # The three allow the same tokens.
                allowed = torch.isinf(run_ours())
                assert torch.equal(allowed, torch.isinf(ref(ids, scores))), depth
                assert torch.equal(allowed, torch.isinf(mini(ids, scores))), depth
                prefixes = ids[:, 1:].numpy()
                row[f"depth{depth}"] = {
                    "processor_us": median_us(run_ours, a.repeat),
                    "rust_mask_us": median_us(lambda: view.allowed_mask(prefixes), a.repeat),
                    "dict_trie_us": median_us(lambda: ref(ids, scores), a.repeat),
                    "prefix_string_us": median_us(lambda: mini(ids, scores), a.repeat),
                }
            steps = [row[f"depth{d}"] for d in range(view.full_len)]
            mean = lambda f: sum(s[f] for s in steps) / len(steps)
            row["mean_us"] = {f: mean(f) for f in steps[0]}
            row["speedup_vs_dict_trie"] = row["mean_us"]["dict_trie_us"] / row["mean_us"]["processor_us"]
            row["speedup_vs_prefix_string"] = row["mean_us"]["prefix_string_us"] / row["mean_us"]["processor_us"]
            row["generate"] = share_of_generate(view, keys, vocab, trie, by_string, beams)
            rows.append(row)
        out = {"items": a.items, "levels": a.levels, "k": a.k, "create_s": create_s,
               "python_tries_s": tries_s, "rows": rows}
        print(json.dumps(out) if a.json else json.dumps(out, indent=1))


class Timed(transformers.LogitsProcessor):
    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def __call__(self, ids, scores):
        t = time.perf_counter()
        out = self.inner(ids, scores)
        self.seconds += time.perf_counter() - t
        return out


def share_of_generate(view, keys, vocab, trie, by_string, beams):
    """One generate call of a small GPT-2 (d 64, 2 layers) per way of
    masking: its wall time and the share the masking took."""
    cfg = transformers.GPT2Config(vocab_size=len(vocab), n_embd=64, n_layer=2, n_head=2,
                                  n_positions=64, bos_token_id=EOS, eos_token_id=EOS,
                                  pad_token_id=PAD)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    prompt = torch.full((1, 8), vocab["w0"], dtype=torch.long)
    start = prompt.shape[1]
    ways = {
        "processor": SidLogitsProcessor(view, vocab, eos_token_id=EOS),
        "dict_trie": PrefixConstrainedLogitsProcessor(dict_trie_fn(trie, start), beams),
        "prefix_string": PrefixConstrainedLogitsProcessor(string_fn(by_string, start), beams),
    }
    out = {}
    for name, proc in ways.items():
        timed = Timed(proc)
        t = time.perf_counter()
        with torch.no_grad():
            model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                           num_beams=beams, num_return_sequences=min(beams, 20),
                           do_sample=False, max_new_tokens=view.full_len + 1,
                           pad_token_id=PAD, eos_token_id=EOS,
                           logits_processor=transformers.LogitsProcessorList([timed]))
        total = time.perf_counter() - t
        out[name] = {"generate_s": total, "mask_s": timed.seconds, "share": timed.seconds / total}
    return out


if __name__ == "__main__":
    main()
