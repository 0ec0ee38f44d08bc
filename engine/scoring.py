"""How well a picture fits its words (CLIP score) and how alike a character looks across pages.

CLIP score, as torchmetrics defines it: the cosine of the CLIP image embedding and the CLIP text
embedding, times 100, floored at 0: score = max(100 * cos(E_image, E_text), 0). The text is truncated
to the CLIP text encoder's window (77 tokens, start and end tokens included) as torchmetrics does: words
past it do not count. Two roles of the profile use it: the `ranker` (a small CLIP, ViT-B/32) picks the
best of N candidates, and the `judge` (a different, larger CLIP, ViT-L/14) reports a book's score, so a
book is not graded by the model that chose its pictures. A book's summary is the mean with a 95 %
percentile bootstrap interval (2000 resamples, fixed seed).

Character consistency: DINOv2 image embeddings (the CLS token) of the pictures of the pages a
character is on; the score is the mean cosine similarity over all pairs, times 100 (100: identical
embeddings; needs two pictures). On random-weight tiny models every figure here is meaningless: the
code paths are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations

import torch
from PIL import Image

from core.stats import bootstrap_mean
from engine.device import DeviceChoice, pick_device
from engine.errors import InputError
from engine.loading import hub_kwargs, loaded_model
from engine.profiles import Profile, role_name

SCORE_ROLES = ("ranker", "judge")
CLIP_SCORE_DEFINITION = (
    "CLIP score = max(100 * cosine(image embedding, text embedding), 0), as torchmetrics defines it; "
    "the text is cut to the CLIP text encoder's 77 tokens (start and end included)."
)


def _features(output) -> torch.Tensor:
    """transformers 5 returns a model output whose pooler_output is the projected embedding; 4.x a tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@dataclass
class ClipScorer:
    model: object
    processor: object
    model_id: str
    role: str
    device: str = "cpu"

    @property
    def max_tokens(self) -> int:
        return int(self.model.config.text_config.max_position_embeddings)

    @torch.inference_mode()
    def score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> list[float]:
        """One score per (image, text) pair; see the module notes for the definition."""
        if len(images) != len(texts):
            raise InputError("Each picture needs the words it is scored against.")
        if not images:
            return []
        tokens = self.processor.tokenizer(
            [t or "" for t in texts], padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        pixels = self.processor.image_processor([im.convert("RGB") for im in images], return_tensors="pt")
        pixel_values = pixels["pixel_values"].to(self.device, self.model.dtype)
        image_embeds = _features(self.model.get_image_features(pixel_values=pixel_values)).float()
        text_embeds = _features(self.model.get_text_features(**tokens)).float()
        cos = torch.nn.functional.cosine_similarity(image_embeds, text_embeds, dim=-1)
        return [max(100.0 * float(c), 0.0) for c in cos]


def _load_clip(location: str, choice: DeviceChoice):
    from transformers import CLIPModel, CLIPProcessor

    kwargs = hub_kwargs()
    model = CLIPModel.from_pretrained(location, dtype=choice.dtype, **kwargs).to(choice.device).eval()
    processor = CLIPProcessor.from_pretrained(location, local_files_only=kwargs["local_files_only"])
    return model, processor


@contextmanager
def open_scorer(profile: Profile, role: str = "ranker", choice: DeviceChoice | None = None) -> Iterator[ClipScorer]:
    """The profile's CLIP scorer of `role` (ranker or judge), loaded once per process through the cache."""
    if role not in SCORE_ROLES:
        raise InputError(f"A scorer is the 'ranker' or the 'judge', not {role!r}.")
    ref = profile.model(role)
    if not ref:
        raise InputError(f"The profile '{profile.name}' has no {role_name(role)}, so pictures cannot be scored.")
    choice = choice or pick_device()
    with loaded_model(role, ref, choice, lambda loc: _load_clip(loc, choice)) as (model, processor):
        yield ClipScorer(model, processor, ref, role, choice.device)


# ---------------------------------------------------------------- character consistency


@dataclass
class ConsistencyScorer:
    model: object
    processor: object
    model_id: str
    device: str = "cpu"

    @torch.inference_mode()
    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.processor([im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        out = self.model(pixel_values=pixels.to(self.device, self.model.dtype))
        return torch.nn.functional.normalize(out.last_hidden_state[:, 0].float(), dim=-1)

    def score(self, images: Sequence[Image.Image]) -> float | None:
        """Mean pairwise cosine x 100 of the pictures' embeddings; None for fewer than two pictures."""
        if len(images) < 2:
            return None
        embeds = self.embed(images)
        pairs = [float(embeds[i] @ embeds[j]) for i, j in combinations(range(len(images)), 2)]
        return 100.0 * sum(pairs) / len(pairs)

    def per_character(self, pictures: Sequence[Image.Image], cast: Sequence[Sequence[str]]) -> dict[str, float | None]:
        """For each character, the score of the pictures of the pages it is on (cast: names per page)."""
        names = list(dict.fromkeys(name for page in cast for name in page))
        return {name: self.score([p for p, page in zip(pictures, cast) if name in page]) for name in names}


def _load_dinov2(location: str, choice: DeviceChoice):
    from transformers import AutoImageProcessor, AutoModel

    kwargs = hub_kwargs()
    model = AutoModel.from_pretrained(location, dtype=choice.dtype, **kwargs).to(choice.device).eval()
    processor = AutoImageProcessor.from_pretrained(location, local_files_only=kwargs["local_files_only"])
    return model, processor


@contextmanager
def open_consistency(profile: Profile, choice: DeviceChoice | None = None) -> Iterator[ConsistencyScorer]:
    ref = profile.model("consistency")
    if not ref:
        raise InputError(
            f"The profile '{profile.name}' has no {role_name('consistency')}, so characters cannot be compared."
        )
    choice = choice or pick_device()
    with loaded_model("consistency", ref, choice, lambda loc: _load_dinov2(loc, choice)) as (model, processor):
        yield ConsistencyScorer(model, processor, ref, choice.device)


def judge_book(
    profile: Profile, images: Sequence[Image.Image], texts: Sequence[str], choice: DeviceChoice | None = None
) -> dict:
    """The judge's score of each picture against its page's words, and the book's mean with its interval.

    {"model", "role": "judge", "scores": [...], "summary": bootstrap_mean(scores), "definition"}.
    """
    with open_scorer(profile, "judge", choice) as judge:
        scores = [judge.score([image], [text])[0] for image, text in zip(images, texts)]
        model = judge.model_id
    return {
        "model": model,
        "role": "judge",
        "scores": scores,
        "summary": bootstrap_mean(scores),
        "definition": CLIP_SCORE_DEFINITION,
    }


def character_consistency(
    profile: Profile,
    images: Sequence[Image.Image],
    cast: Sequence[Sequence[str]],
    choice: DeviceChoice | None = None,
) -> dict[str, float | None]:
    """Per character, how alike the pictures of its pages look (see the module notes); None: under two pages."""
    with open_consistency(profile, choice) as scorer:
        return scorer.per_character(images, cast)
