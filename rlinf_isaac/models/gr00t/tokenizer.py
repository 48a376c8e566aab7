"""Tokenizers for the GR00T policy: a tiny built-in BPE and a local-only loader.

Full GR00T N1.5: its Eagle 2.5 backbone reads Qwen3 tokens (Qwen3-1.7B vocabulary plus
Eagle's added tokens ``<img>``, ``</img>``, ``<IMG_CONTEXT>``; in the public configs the
image-context id, ``image_token_index``, is 151669). Those files come with the user's
GR00T/Eagle checkpoint and are loaded with :func:`load_tokenizer` from a local folder.

Tiny model: :func:`build_tiny_tokenizer` trains a byte-level BPE (vocab 1024) on a fixed
built-in corpus (task instructions, manipulation vocabulary, colours, numbers, common
words). Training is our own deterministic loop (most frequent pair first, ties broken by
the pair's strings), so the same corpus gives a byte-identical ``tokenizer.json`` in any
process; the result is a ``tokenizers`` BPE model wrapped in ``PreTrainedTokenizerFast``.
Special tokens have fixed ids 0..6, matching ``gr00t_tiny`` (pad 0, image_token_index 6).

Random-weight runs of a larger config whose tokenizer is not shipped (benchmarks, tests):
:func:`stand_in_tokenizer` moves the tiny BPE's special tokens to that model's ids.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

__all__ = [
    "SPECIAL_TOKENS",
    "TINY_VOCAB_SIZE",
    "IMAGE_CONTEXT_TOKEN",
    "IMAGE_START_TOKEN",
    "IMAGE_END_TOKEN",
    "tiny_corpus",
    "train_byte_bpe",
    "build_tiny_tokenizer",
    "stand_in_tokenizer",
    "load_tokenizer",
]

IMAGE_START_TOKEN, IMAGE_END_TOKEN, IMAGE_CONTEXT_TOKEN = "<img>", "</img>", "<IMG_CONTEXT>"
SPECIAL_TOKENS = ("<|pad|>", "<|unk|>", "<|im_start|>", "<|im_end|>", IMAGE_START_TOKEN,
                  IMAGE_END_TOKEN, IMAGE_CONTEXT_TOKEN)  # ids 0..6, in this order
TINY_VOCAB_SIZE = 1024

_INSTRUCTIONS = (
    "Stack the red cube on the blue cube, then the green cube on the red cube.",
    "Stack the red cube on the blue cube.",
)
_WORDS = """
the a an on in into onto under over above below then and or of to from with without at by
for is are be was were it this that these those its your my their there here not no yes
stack stacked stacking pick picked place placed put lift lifted lower move moved push pull
grasp grasped grip gripper grippers release released open opened close closed hold holding
reach reached approach align aligned rotate rotated turn slide drop dropped carry raise
cube cubes block blocks box boxes tower top bottom middle side left right front back center
table surface tray bin plate bowl cup mug bottle can object objects item items target goal
robot arm hand wrist finger fingers joint joints camera image images view base end effector
red blue green yellow orange purple pink black white gray grey brown cyan magenta violet
small large big little tall short heavy light near far first second third last next again
one two three four five six seven eight nine ten eleven twelve twenty hundred thousand
zero half quarter once twice step steps episode task success failure done reset state
position orientation rotation angle axis delta velocity force distance height width depth
up down forward backward clockwise counterclockwise slowly quickly carefully gently
please now then after before until while when where which what who how why
make do does did have has had can could should would will shall may might must
pick up the cube and place it on top of the other cube
put the green block on the red block
move the gripper above the blue cube
close the gripper and lift the cube
open the gripper to release the block
franka panda isaac lab mujoco simulation policy action actions observation
"""
_NUMBERS = " ".join(str(i) for i in range(0, 101)) + " 0.5 1.0 2.5 3.14 10 20 50 100 1000"


def tiny_corpus() -> list[str]:
    """The fixed training corpus of the tiny tokenizer (a list of text lines)."""
    lines = list(_INSTRUCTIONS) * 8
    lines += [line.strip() for line in _WORDS.strip().splitlines()]
    lines += [w.capitalize() for w in _WORDS.split()]
    lines += [_NUMBERS, "user assistant system", "User: Assistant:"]
    colours = "red blue green yellow orange purple".split()
    objects = "cube block box bowl cup plate".split()
    lines += [f"Stack the {a} {o} on the {b} {o}." for a in colours for b in colours
              for o in objects if a != b]
    lines += [f"Put the {a} {o} in the {b} bowl." for a in colours for b in colours[:3]
              for o in objects[:3]]
    return lines


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode char map (used by ByteLevel)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def _pair_counts(words: list[list[str]], freqs: list[int]):
    counts: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for i, (w, f) in enumerate(zip(words, freqs)):
        for pair in zip(w, w[1:]):
            counts[pair] += f
            where.setdefault(pair, set()).add(i)
    return counts, where


def _merge_word(w: list[str], pair: tuple[str, str]) -> list[str]:
    out, i = [], 0
    while i < len(w):
        if i + 1 < len(w) and (w[i], w[i + 1]) == pair:
            out.append(w[i] + w[i + 1])
            i += 2
        else:
            out.append(w[i])
            i += 1
    return out


def train_byte_bpe(lines: Iterable[str], num_merges: int) -> list[tuple[str, str]]:
    """Learn up to ``num_merges`` byte-level BPE merges from ``lines``, deterministically.

    Each round merges the most frequent adjacent pair (ties: smallest pair of strings).
    """
    from tokenizers import pre_tokenizers  # lazy

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    word_freq: Counter = Counter()
    for line in lines:
        word_freq.update(piece for piece, _ in pre.pre_tokenize_str(line))
    ordered = sorted(word_freq)  # fixed order, independent of insertion/hash order
    words = [list(w) for w in ordered]
    freqs = [word_freq[w] for w in ordered]
    counts, where = _pair_counts(words, freqs)
    heap = [(-c, p) for p, c in counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while heap and len(merges) < num_merges:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg or -neg <= 0:
            continue  # stale heap entry
        merges.append(pair)
        for i in sorted(where.pop(pair, ())):
            old, new = words[i], _merge_word(words[i], pair)
            for p in zip(old, old[1:]):
                counts[p] -= freqs[i]
            for p in zip(new, new[1:]):
                counts[p] += freqs[i]
                where.setdefault(p, set()).add(i)
                heapq.heappush(heap, (-counts[p], p))
            words[i] = new
        counts.pop(pair, None)
    return merges


def build_tiny_tokenizer(vocab_size: int = TINY_VOCAB_SIZE, corpus: list[str] | None = None):
    """Deterministic byte-level BPE for the tiny model -> ``transformers.PreTrainedTokenizerFast``.

    Ids: 0..6 the special tokens (``SPECIAL_TOKENS``), 7..262 the 256 byte symbols, then the
    merges in learned order up to ``vocab_size`` (fewer if the corpus runs out of pairs).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    base = len(SPECIAL_TOKENS) + 256
    if vocab_size <= base:
        raise ValueError(f"build_tiny_tokenizer: vocab_size must exceed {base} (7 special "
                         f"tokens + 256 bytes), got {vocab_size}")
    merges = train_byte_bpe(corpus if corpus is not None else tiny_corpus(), vocab_size - base)
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for _b, ch in sorted(_bytes_to_unicode().items()):
        vocab[ch] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|pad|>", unk_token="<|unk|>",
        eos_token="<|im_end|>", bos_token=None,
        extra_special_tokens={"image_token": IMAGE_CONTEXT_TOKEN},
        model_max_length=4096,
    )


_WHO_PROVIDES = (
    "for the full GR00T N1.5 model: the Qwen3 tokenizer files (tokenizer.json, "
    "tokenizer_config.json, vocab.json, merges.txt) from your local GR00T/Eagle checkpoint; "
    "for the tiny model: the tokenizer saved with the checkpoint by rlinf_isaac's SFT script "
    "(or build_tiny_tokenizer().save_pretrained(path))"
)


def stand_in_tokenizer(model_cfg):
    """The tiny BPE with its special tokens at ``model_cfg``'s ids, for a model whose own tokenizer
    is absent (random weights: token values change no compute, and the prompt layout and its
    padded length stay the same). ``<|pad|>`` takes ``backbone_cfg.pad_token_id``,
    ``<IMG_CONTEXT>`` ``backbone_cfg.image_token_index`` and the other five the ids just below
    it. The tiny model gets the tiny tokenizer itself."""
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    bb = model_cfg.backbone_cfg
    tiny = build_tiny_tokenizer()
    if bb.llm.vocab_size == tiny.vocab_size and bb.image_token_index == 6:
        return tiny
    rest = [t for t in SPECIAL_TOKENS if t not in ("<|pad|>", IMAGE_CONTEXT_TOKEN)]
    ids = {"<|pad|>": bb.pad_token_id, IMAGE_CONTEXT_TOKEN: bb.image_token_index}
    ids.update({tok: bb.image_token_index - 1 - i for i, tok in enumerate(rest)})
    if min(ids.values()) < tiny.vocab_size or len(set(ids.values())) != len(ids):
        raise ValueError(f"stand_in_tokenizer: the special tokens cannot take the ids {ids}, which must lie "
                         f"above the tiny vocabulary ({tiny.vocab_size}) and differ; load the model's own "
                         f"tokenizer folder with load_tokenizer instead")
    spec = json.loads(tiny.backend_tokenizer.to_str())
    for added in spec["added_tokens"]:
        added["id"] = ids[added["content"]]
    spec["model"]["vocab"].update({k: v for k, v in ids.items() if k in spec["model"]["vocab"]})
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
                                   pad_token="<|pad|>", unk_token="<|unk|>")


def load_tokenizer(path: str | os.PathLike):
    """Load a tokenizer from a LOCAL folder (never the hub) -> ``PreTrainedTokenizerBase``.

    The folder needs ``tokenizer.json`` or ``vocab.json`` + ``merges.txt``; a missing folder
    or file raises FileNotFoundError naming it and what provides it.
    """
    from transformers import AutoTokenizer, PretrainedConfig

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"tokenizer folder not found: {str(folder)!r}; it should hold "
                                f"{_WHO_PROVIDES}")
    has_json = (folder / "tokenizer.json").is_file()
    has_bpe = (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    if not (has_json or has_bpe):
        raise FileNotFoundError(
            f"tokenizer file missing: {str(folder / 'tokenizer.json')!r} (or vocab.json + "
            f"merges.txt) in {str(folder)!r}; it is provided {_WHO_PROVIDES}")
    # config=: the tokenizer class comes from tokenizer_config.json; without it AutoTokenizer
    # would read the folder's GR00T config.json, a model type transformers does not know, and warn
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, config=PretrainedConfig())
