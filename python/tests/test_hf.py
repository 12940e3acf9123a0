"""SidLogitsProcessor inside `generate`: tiny randomly initialised T5 and
GPT-2 models built from configs (nothing downloaded), against a reference
`prefix_allowed_tokens_fn` over a Python dict trie, written the way
LETTER-style repositories write it."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import adasid  # noqa: E402
from adasid.hf import SidLogitsProcessor, sid_vocabulary  # noqa: E402

PAD, EOS = 0, 1
PROMPT_WORDS = 20


def vocabulary(view):
    """Special tokens, the SID tokens, then plain prompt words."""
    names = ["<pad>", "</s>"] + sid_vocabulary(view)
    names += [f"w{i}" for i in range(PROMPT_WORDS)]
    return {name: i for i, name in enumerate(names)}


def dict_trie(view, keys, vocab):
    """token-id trie of every full SID, as the repositories build it."""
    trie = {}
    for key in keys:
        node = trie
        for pos, value in enumerate(view.sid(key)):
            node = node.setdefault(vocab[f"<{'abcdefgh'[pos]}_{value}>"], {})
    return trie


def reference_fn(trie, start, full_len):
    def allowed(batch_id, sent):
        node = trie
        for token in sent.tolist()[start:]:
            node = node.get(token, {})
        if len(sent) - start >= full_len:
            return [EOS]
        return list(node.keys())
    return allowed


def prompt(vocab, batch, length, seed):
    g = torch.Generator().manual_seed(seed)
    first = vocab["w0"]
    return torch.randint(first, first + PROMPT_WORDS, (batch, length), generator=g)


def t5(vocab):
    cfg = transformers.T5Config(
        vocab_size=len(vocab), d_model=32, d_ff=64, d_kv=16, num_layers=2,
        num_decoder_layers=2, num_heads=2, pad_token_id=PAD, eos_token_id=EOS,
        decoder_start_token_id=PAD)
    torch.manual_seed(0)
    return transformers.T5ForConditionalGeneration(cfg).eval()


def gpt2(vocab):
    cfg = transformers.GPT2Config(
        vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=64,
        bos_token_id=EOS, eos_token_id=EOS, pad_token_id=PAD)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg).eval()


def generate(model, inputs, beams, full_len, **how):
    with torch.no_grad():
        return model.generate(
            input_ids=inputs, attention_mask=torch.ones_like(inputs),
            num_beams=beams, num_return_sequences=beams, do_sample=False,
            max_new_tokens=full_len + 1, pad_token_id=PAD, eos_token_id=EOS,
            output_scores=True, return_dict_in_generate=True, **how)


@pytest.mark.parametrize("arch", ["t5", "gpt2"])
def test_generations_equal_the_dict_trie_reference(catalogue, arch):
    view, keys, _ = catalogue
    vocab = vocabulary(view)
    model = t5(vocab) if arch == "t5" else gpt2(vocab)
    inputs = prompt(vocab, batch=2, length=5, seed=3)
    start = 1 if arch == "t5" else inputs.shape[1]
    proc = SidLogitsProcessor(view, vocab, eos_token_id=EOS)
    ours = generate(model, inputs, 20, view.full_len,
                    logits_processor=transformers.LogitsProcessorList([proc]))
    found = proc.keys(ours.sequences)
    trie = dict_trie(view, keys, vocab)
    ref = generate(model, inputs, 20, view.full_len,
                   prefix_allowed_tokens_fn=reference_fn(trie, start, view.full_len))
    assert torch.equal(ours.sequences, ref.sequences)
    assert torch.allclose(ours.sequences_scores, ref.sequences_scores, atol=0, rtol=0)
    # Every output is an existing item, each input's 20 distinct, and keys round-trip.
    assert None not in found
    for b in range(2):
        assert len(set(found[b * 20:(b + 1) * 20])) == 20
    for key, row in zip(found, ours.sequences):
        sid = view.sid(key)
        ids = [vocab[f"<{'abcd'[p]}_{v}>"] for p, v in enumerate(sid)]
        assert row.tolist()[start:start + view.full_len] == ids


def test_wide_beams(catalogue):
    view, _, _ = catalogue
    vocab = vocabulary(view)
    proc = SidLogitsProcessor(view, vocab, eos_token_id=EOS)
    inputs = prompt(vocab, batch=1, length=3, seed=5)
    out = generate(gpt2(vocab), inputs, 512, view.full_len,
                   logits_processor=transformers.LogitsProcessorList([proc]))
    found = proc.keys(out.sequences)
    assert None not in found and len(set(found)) == 512


def test_a_vocabulary_without_the_sid_tokens_is_refused(catalogue):
    view, _, _ = catalogue
    vocab = vocabulary(view)
    del vocab["<c_16>"]
    with pytest.raises(ValueError, match="lacks 1 of the"):
        SidLogitsProcessor(view, vocab)


def test_a_prefix_no_item_has_is_masked_with_one_warning(catalogue):
    view, _, _ = catalogue
    vocab = vocabulary(view)
    proc = SidLogitsProcessor(view, vocab, eos_token_id=EOS)
    scores = torch.zeros(3, len(vocab))
    proc(torch.zeros(3, 1, dtype=torch.long), scores)  # the SID starts after one token
    beams = torch.tensor([[0, vocab["<a_1>"]], [0, vocab["w3"]], [0, vocab["<b_1>"]]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = proc(beams, scores)
        proc(torch.cat([beams, beams[:, :1]], dim=1), torch.zeros(3, len(vocab)))
    assert len([w for w in caught if "no item has" in str(w.message)]) == 1
    assert torch.isinf(out[1]).all() and torch.isinf(out[2]).all()
    allowed = torch.nonzero(~torch.isinf(out[0])).flatten().tolist()
    assert allowed == sorted(vocab[f"<b_{t}>"] for t in view.next_tokens([1]))


def test_scores_of_any_dtype_are_masked_alike(catalogue):
    view, keys, _ = catalogue
    vocab = vocabulary(view)
    proc = SidLogitsProcessor(view, vocab, eos_token_id=EOS)
    beams = torch.tensor([[0] + [vocab[f"<{'abcd'[p]}_{v}>"] for p, v in enumerate(view.sid(k)[:2])]
                          for k in keys[:8]])
    scores = torch.randn(8, len(vocab), generator=torch.Generator().manual_seed(1))
    outs = []
    for dtype in (torch.float32, torch.float64):  # the one-pass path, then the index path
        proc.reset()
        proc(beams[:, :1], scores[:, :].to(dtype))
        proc(beams[:, :2], scores.to(dtype))
        outs.append(proc(beams, scores.to(dtype)))
    assert outs[0].dtype == torch.float32 and outs[1].dtype == torch.float64
    assert torch.equal(outs[0], outs[1].float())
    kept = ~torch.isinf(outs[0])
    assert torch.equal(outs[0][kept], scores[kept])
    for b, key in enumerate(keys[:8]):
        want = sorted(vocab[f"<c_{t}>"] for t in view.next_tokens(view.sid(key)[:2]))
        assert torch.nonzero(kept[b]).flatten().tolist() == want


def test_one_processor_serves_consecutive_generate_calls(catalogue):
    view, _, _ = catalogue
    vocab = vocabulary(view)
    model = gpt2(vocab)
    logits = lambda p: transformers.LogitsProcessorList([p])  # noqa: E731
    shared = SidLogitsProcessor(view, vocab, eos_token_id=EOS)
    first = prompt(vocab, batch=1, length=5, seed=7)
    generate(model, first, 8, view.full_len, logits_processor=logits(shared))
    # A prompt whose length is not one more than the last call's sequences
    # starts a new SID on its own (the first call ended at 5 + full_len
    # tokens, this one at 4 + full_len); one exactly a token longer than
    # that needs reset().
    for length, reset in ((4, False), (4 + view.full_len + 1, True)):
        if reset:
            shared.reset()
        inputs = prompt(vocab, batch=1, length=length, seed=length)
        ours = generate(model, inputs, 8, view.full_len, logits_processor=logits(shared))
        fresh = SidLogitsProcessor(view, vocab, eos_token_id=EOS)
        want = generate(model, inputs, 8, view.full_len, logits_processor=logits(fresh))
        assert torch.equal(ours.sequences, want.sequences), length
        assert None not in shared.keys(ours.sequences)
