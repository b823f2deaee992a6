"""Per-class text prompts for KP-Net: the sentence, the frozen encoder, the class embeddings.

KP-Net describes each class with a sentence ("A computerized tomography of a {organ}.") and embeds
it with a frozen text encoder (Bio_ClinicalBERT's pooled output in the official code) plus a
learned per-class offset. medssl cannot download a model at run time, so the frozen encoder is one
that ships its weights inside a PyPI package and runs offline: ``wordllama`` (the ``text`` extra,
``pip install 'medssl[text]'``; 256-d static token embeddings, about 19 MB). Without it, a run
uses ``learned`` class embeddings (an ``nn.Embedding`` per class) instead; the run config says
which (``method_config.text_encoder``, resolved from ``auto`` before ``RUN/config.yaml`` is
written).

Frozen embeddings are computed once, when the network is built, and kept as a buffer: a
checkpoint evaluates on a machine without the encoder installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from medssl.errors import ConfigError

LEARNED = "learned"
AUTO = "auto"
LEARNED_DIM = 256  # width of learned class embeddings (the wordllama width)

TEMPLATES = {
    "ct": "A computerized tomography of a {name}",
    "mr": "A magnetic resonance image of a {name}",
    "other": "A medical image of a {name}",
}


@dataclass(frozen=True)
class TextEncoder:
    """A frozen sentence encoder available offline: its package, width and embedding function."""

    package: str
    dim: int
    embed: Callable[[list[str]], torch.Tensor]

    def available(self) -> bool:
        """Importable here (not merely present: a package missing a dependency is not)."""
        try:
            importlib.import_module(self.package)
        except ImportError:
            return False
        return True


def _wordllama_embed(sentences: list[str]) -> torch.Tensor:
    """L2-normalised WordLlama (l2_supercat, 256-d) embeddings, loaded from the wheel only.

    The wheel ships the weights and the tokenizer; pointing ``cache_dir`` at the package folder
    makes WordLlama find its bundled tokenizer, and ``disable_download`` keeps it offline.
    """
    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    return torch.as_tensor(model.embed(sentences, norm=True), dtype=torch.float32)


ENCODERS: dict[str, TextEncoder] = {
    "wordllama": TextEncoder("wordllama", 256, _wordllama_embed),
}


def resolve_text_encoder(requested: str) -> str:
    """``auto`` -> the first installed frozen encoder, else ``learned``; others are checked."""
    if requested == AUTO:
        return next((name for name, enc in ENCODERS.items() if enc.available()), LEARNED)
    if requested == LEARNED:
        return LEARNED
    if requested not in ENCODERS:
        options = ", ".join([AUTO, LEARNED, *ENCODERS])
        raise ConfigError(f"text_encoder {requested!r} is unknown; choose one of: {options}")
    if not ENCODERS[requested].available():
        raise ConfigError(
            f"text_encoder {requested!r} is not installed; pip install 'medssl[text]' "
            f"or set method_config.text_encoder: {LEARNED}"
        )
    return requested


def modality(channel_names: dict[str, str]) -> str:
    """``ct``, ``mr`` or ``other`` from dataset.json's channel names."""
    words = " ".join(channel_names.values()).lower().replace("-", " ").replace("_", " ").split()
    if "ct" in words:
        return "ct"
    if any(w in ("mr", "mri", "t1", "t2", "flair", "lge") or w.startswith("mri") for w in words):
        return "mr"
    return "other"


def class_prompts(class_names: Sequence[str], channel_names: dict[str, str]) -> list[str]:
    """One sentence per class, in label order, with KP-Net's template for the modality."""
    template = TEMPLATES[modality(channel_names)]
    return [template.format(name=name.replace("_", " ")) for name in class_names]


class FrozenPrompts(nn.Module):
    """Frozen sentence embeddings (a buffer) plus a learned per-class offset, as KP-Net's code
    adds a learned "positional embedding" (initialised N(0, 0.01^2)) to the BERT output.

    ``embeddings`` None: the encoder is not installed here; the buffer holds zeros until a
    checkpoint's state fills it (``ready`` says whether it holds real embeddings).
    """

    def __init__(self, embeddings: torch.Tensor | None, num_classes: int, dim: int) -> None:
        super().__init__()
        self.ready = embeddings is not None
        values = torch.zeros(num_classes, dim) if embeddings is None else embeddings.float()
        self.register_buffer("embeddings", values.detach().clone())
        self.offset = nn.Parameter(torch.randn(num_classes, dim) * 0.01)

    def forward(self) -> torch.Tensor:
        return self.embeddings + self.offset

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        if prefix + "embeddings" in state_dict:
            self.ready = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class LearnedPrompts(nn.Module):
    """One learned embedding per class, used when no frozen encoder is installed."""

    ready = True

    def __init__(self, num_classes: int, dim: int = LEARNED_DIM) -> None:
        super().__init__()
        self.table = nn.Embedding(num_classes, dim)

    def forward(self) -> torch.Tensor:
        return self.table.weight


def build_prompts(encoder: str, prompts: list[str]) -> FrozenPrompts | LearnedPrompts:
    """The class-embedding module, ``() -> (K, D)``, for a resolved encoder name.

    A frozen encoder runs once, here. When it is not installed (a checkpoint evaluated on
    another machine) the buffer waits for the checkpoint's state; training refuses to start
    before it holds real embeddings (see ``ready``).
    """
    if encoder == LEARNED:
        return LearnedPrompts(len(prompts))
    if encoder not in ENCODERS:
        options = ", ".join([LEARNED, *ENCODERS])
        raise ConfigError(f"text_encoder {encoder!r} is unknown; choose one of: {options}")
    spec = ENCODERS[encoder]
    embeddings = spec.embed(prompts) if spec.available() else None
    return FrozenPrompts(embeddings, len(prompts), spec.dim)
