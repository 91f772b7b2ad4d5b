"""Write a tiny llama-architecture GGUF model whose answers are fixed by its weights.

Run with the interop server environment's Python (it needs ``gguf`` and ``numpy``)::

    python tests/interop/tinyllama.py /tmp/tiny.gguf

The model is a bigram machine: its one transformer block adds nothing to the residual stream
(the attention and feed-forward output projections are zero), so the next token depends only
on the current one, through the token embedding and the output matrix. Every token that is not
part of a chain is embedded as ``e0`` and continues with ``Hello``; each chain token ``t`` is
embedded as ``e0 + e_k(t)`` and its one successor gets a logit twice as large as ``Hello``'s,
so greedy decoding and ordinary sampling (temperature up to about 1) pick the same tokens.

- A prompt whose last token is not a chain token is answered with `ANSWER`, then end of text.
  The answer spells ``café``, ``€`` and ``😀`` with byte tokens, so each of those characters
  is split across two to four tokens.
- A prompt that ends with ``!`` is answered with `` tick tock tick tock ...`` until
  ``max_tokens`` or the context runs out: a long generation for the concurrency tests.

The chat template concatenates the messages' contents, so the last character of the last
message chooses the answer. No weights are downloaded; the file is about 100 KB.
"""

from __future__ import annotations

import sys

ANSWER = "Hello from a tiny llama: café costs 5€ and smiles 😀."
TICKS = " tick tock"

_SPACE = "\u2581"  # SentencePiece's space
_WORDS = ["Hello", "from", "a", "tiny", "llama:", "caf", "costs", "5", "and", "smiles", "tick", "tock"]
_EMBED = 32
_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


def _vocab() -> tuple[list[str], list[int]]:
    """Tokens and their types: unknown, BOS, EOS, 256 byte tokens, space, ASCII, words."""
    from gguf import TokenType

    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [_SPACE]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256 + [TokenType.NORMAL]
    tokens += [chr(c) for c in range(0x21, 0x7F)]
    tokens += [_WORDS[0]] + [_SPACE + w for w in _WORDS[1:]]
    types += [TokenType.NORMAL] * (len(tokens) - len(types))
    return tokens, [int(t) for t in types]


def _chains(ids: dict[str, int]) -> list[tuple[int, int]]:
    """(token, successor) pairs: the answer ending in EOS, and the tick-tock cycle after ``!``."""
    byte = lambda b: ids[f"<0x{b:02X}>"]  # noqa: E731
    answer = [ids["Hello"], ids[_SPACE + "from"], ids[_SPACE + "a"], ids[_SPACE + "tiny"], ids[_SPACE + "llama:"]]
    answer += [ids[_SPACE + "caf"], *map(byte, "é".encode()), ids[_SPACE + "costs"], ids[_SPACE + "5"]]
    answer += [*map(byte, "€".encode()), ids[_SPACE + "and"], ids[_SPACE + "smiles"], ids[_SPACE]]
    answer += [*map(byte, "😀".encode()), ids["."], ids["</s>"]]
    pairs = list(zip(answer, answer[1:]))
    tick, tock = ids[_SPACE + "tick"], ids[_SPACE + "tock"]
    pairs += [(ids["!"], tick), (tick, tock), (tock, tick)]
    return pairs


def write(path: str) -> None:
    """Write the model to ``path``."""
    import numpy as np
    from gguf import GGUFWriter

    tokens, types = _vocab()
    ids = {t: i for i, t in enumerate(tokens)}
    pairs = _chains(ids)
    n_vocab, d = len(tokens), _EMBED
    assert len(pairs) < d, "one embedding dimension per chain token"
    embed = np.zeros((n_vocab, d), dtype=np.float32)
    embed[:, 0] = 1.0
    output = np.zeros((n_vocab, d), dtype=np.float32)
    output[ids["Hello"], 0] = 10.0  # the default continuation
    for k, (token, successor) in enumerate(pairs, start=1):
        embed[token, k] = 1.0
        output[successor, k] = 20.0  # beats the default by a margin of 40 after the norm

    writer = GGUFWriter(path, "llama")
    writer.add_name("llmstreamer-interop-tiny")
    writer.add_context_length(65536)
    writer.add_embedding_length(d)
    writer.add_block_count(1)
    writer.add_feed_forward_length(d)
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_rope_dimension_count(d // 2)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(_TEMPLATE)

    zeros = lambda *shape: np.zeros(shape, dtype=np.float32)  # noqa: E731
    ones = np.ones(d, dtype=np.float32)
    writer.add_tensor("token_embd.weight", embed)
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", output)
    writer.add_tensor("blk.0.attn_norm.weight", ones)
    for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        writer.add_tensor(f"blk.0.{name}.weight", zeros(d, d))
    writer.add_tensor("blk.0.ffn_norm.weight", ones)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    write(sys.argv[1])
