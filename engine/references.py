"""A character's reference picture steering the pages the character is on.

Two ways, chosen by the profile (Profile.reference_methods):

* Shared self-attention (any UNet; SD-Turbo's only way, since no IP-Adapter exists for SD 2.1), in the
  style of StoryDiffusion. The reference picture is drawn again alongside the pages, in the same batch,
  from its stored prompt and seed at the pages' steps, guidance and size. In every self-attention layer
  a page attends to its own tokens plus a fixed share of the reference's tokens (share rate 0..1; the
  subset is the same at every step, chosen by a generator with a fixed seed per layer), while the
  reference attends to itself only. So a page depends on its own seed and its reference, never on the
  other pages of the batch: each page redraws alone, exactly, and the reference in the batch is exactly
  the reference drawn alone. Cost: the pages' self-attention reads (1 + rate) times the keys, plus one
  reference row per batch.
* IP-Adapter (SD 1.5 based profiles) through diffusers' own `load_ip_adapter`: the reference image is
  embedded by the adapter's CLIP image encoder and the adapter's cross-attention adds it to the page.
  Pages without a reference in the same pipeline are drawn with adapter scale 0, which adds exactly
  nothing, so they match a plain draw.

A page's settings record its reference (`Reference.to_settings`), so it redraws exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image

from core.limits import DEFAULT_IP_SCALE, DEFAULT_SHARE_RATE
from engine.errors import InputError
from engine.profiles import REFERENCE_IP_ADAPTER, REFERENCE_SHARED_ATTENTION, Profile

_SUBSET_SEED = 19  # the seed of the generator choosing which reference tokens a layer shares


@dataclass(frozen=True)
class Reference:
    """A character's reference picture as a page is drawn with it.

    For shared attention, prompt/negative_prompt/seed redraw the reference itself alongside the page; for
    IP-Adapter, image is the picture (drawn or uploaded) and image_sha256 names it in the page's settings.
    """

    name: str  # the character
    method: str = REFERENCE_SHARED_ATTENTION
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    share_rate: float = DEFAULT_SHARE_RATE
    scale: float = DEFAULT_IP_SCALE
    image: Image.Image | None = field(default=None, compare=False, repr=False)
    reference_id: str = ""  # the caller's id of the stored reference picture, recorded as is

    @property
    def image_sha256(self) -> str:
        if self.image is None:
            return ""
        return hashlib.sha256(self.image.convert("RGB").tobytes()).hexdigest()

    def check(self) -> Reference:
        if self.method not in (REFERENCE_SHARED_ATTENTION, REFERENCE_IP_ADAPTER):
            raise InputError(f"A reference is drawn with shared attention or the IP-Adapter, not {self.method!r}.")
        if self.method == REFERENCE_SHARED_ATTENTION:
            if not 0.0 <= float(self.share_rate) <= 1.0:
                raise InputError(f"The share rate must be between 0 and 1; {self.share_rate} was asked for.")
            if not (self.prompt or "").strip():
                raise InputError(f"{self.name}'s reference picture has no prompt to draw it again from.")
        elif self.image is None:
            raise InputError(f"{self.name}'s reference picture is missing: draw or upload one first.")
        elif not 0.0 <= float(self.scale) <= 2.0:
            raise InputError(f"The reference strength must be between 0 and 2; {self.scale} was asked for.")
        return self

    def batch_key(self) -> tuple:
        """What the pages of one batch must share: the method and, for IP-Adapter, the scale."""
        return (self.method, float(self.scale) if self.method == REFERENCE_IP_ADAPTER else None)

    def row_key(self) -> tuple:
        """Pages with equal row keys share one reference row in a shared-attention batch."""
        return (self.prompt, self.negative_prompt, int(self.seed))

    def to_settings(self) -> dict:
        out = {"name": self.name, "method": self.method, "reference_id": self.reference_id}
        if self.method == REFERENCE_SHARED_ATTENTION:
            out |= {
                "prompt": self.prompt,
                "negative_prompt": self.negative_prompt,
                "seed": int(self.seed),
                "share_rate": float(self.share_rate),
            }
        else:
            out |= {"scale": float(self.scale), "image_sha256": self.image_sha256}
        return out


def reference_support(profile: Profile) -> tuple[str, str]:
    """(method, sentence): how this profile draws with references, or why it cannot."""
    methods = profile.reference_methods()
    if not methods:
        return "", (
            f"The '{profile.name}' profile cannot draw with reference pictures: pages use the characters' "
            "descriptions only."
        )
    if methods[0] == REFERENCE_IP_ADAPTER:
        return methods[0], "Pages are drawn with the IP-Adapter, which looks at each character's reference picture."
    return methods[0], (
        "Pages share attention with each character's reference picture (drawn again beside them from its "
        "seed), since this picture model has no IP-Adapter."
    )


# ---------------------------------------------------------------- shared self-attention


class SharedPlan:
    """Which row of a batch shares attention with which reference row (None: none), and how much."""

    def __init__(self, rows: Sequence[int | None] = (), rate: float = DEFAULT_SHARE_RATE):
        self.rows = list(rows)
        self.rate = float(rate)

    def row_sources(self, batch: int) -> list[int | None]:
        n = len(self.rows)
        if not n or batch % n:
            raise RuntimeError(f"shared attention planned for {n} rows but the UNet ran {batch}")
        # Classifier-free guidance runs [unconditional rows, conditional rows]: the plan repeats.
        return [None if self.rows[i % n] is None else (i // n) * n + self.rows[i % n] for i in range(batch)]


class SharedSelfAttnProcessor:
    """Self-attention where a row may also attend to a fixed share of its reference row's tokens."""

    def __init__(self, plan: SharedPlan, layer: int):
        self.plan = plan
        self.layer = layer
        self._subsets: dict[tuple[int, float], torch.Tensor] = {}

    def _subset(self, tokens: int, device) -> torch.Tensor:
        key = (tokens, self.plan.rate)
        if key not in self._subsets:
            generator = torch.Generator().manual_seed(_SUBSET_SEED * 1000 + self.layer)
            count = round(self.plan.rate * tokens)
            self._subsets[key] = torch.randperm(tokens, generator=generator)[:count].sort().values
        return self._subsets[key].to(device)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if encoder_hidden_states is not None:
            raise RuntimeError("the shared-attention processor is for self-attention layers only")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        batch, tokens, _ = hidden_states.shape
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        heads = attn.heads
        head_dim = key.shape[-1] // heads

        def split(x):
            return x.view(x.shape[0], -1, heads, head_dim).transpose(1, 2)

        query, key, value = split(query), split(key), split(value)
        if getattr(attn, "norm_q", None) is not None:
            query = attn.norm_q(query)
        if getattr(attn, "norm_k", None) is not None:
            key = attn.norm_k(key)
        sources = self.plan.row_sources(batch)
        out = torch.empty_like(query)
        plain = [i for i, s in enumerate(sources) if s is None]
        shared = [i for i, s in enumerate(sources) if s is not None]
        if plain:
            out[plain] = F.scaled_dot_product_attention(query[plain], key[plain], value[plain])
        if shared:
            subset = self._subset(tokens, key.device)
            refs = [sources[i] for i in shared]
            k = torch.cat([key[shared], key[refs][:, :, subset]], dim=2)
            v = torch.cat([value[shared], value[refs][:, :, subset]], dim=2)
            out[shared] = F.scaled_dot_product_attention(query[shared], k, v)
        hidden_states = out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


@contextmanager
def shared_attention(unet, plan: SharedPlan):
    """Install the shared processor on every self-attention layer (attn1) for the duration; then restore."""
    before = dict(unet.attn_processors)
    processors = {}
    layer = 0
    for name, processor in before.items():
        if name.endswith("attn1.processor"):
            processors[name] = SharedSelfAttnProcessor(plan, layer)
            layer += 1
        else:
            processors[name] = processor
    unet.set_attn_processor(processors)
    try:
        yield plan
    finally:
        unet.set_attn_processor(before)


# ---------------------------------------------------------------- IP-Adapter


def ip_adapter_location(ref_location: str) -> tuple[str, str, str]:
    """(folder or hub id, subfolder, weight name) of the published SD 1.5 layout."""
    from engine.tinykit import IP_ADAPTER_SUBFOLDER, IP_ADAPTER_WEIGHTS

    return ref_location, IP_ADAPTER_SUBFOLDER, IP_ADAPTER_WEIGHTS


def load_ip_adapter(pipe, location: str, local_files_only: bool) -> None:
    """Load the adapter into the pipeline with diffusers' own loader; a UNet it does not fit says so."""
    folder, subfolder, weights = ip_adapter_location(location)
    try:
        pipe.load_ip_adapter(folder, subfolder=subfolder, weight_name=weights, local_files_only=local_files_only)
    except (RuntimeError, ValueError) as exc:
        if getattr(pipe, "image_encoder", None) is not None:  # loaded before the UNet refused the weights
            pipe.image_encoder = None
            pipe.register_to_config(image_encoder=[None, None])
        if "size mismatch" in str(exc) or "shape" in str(exc):
            raise InputError(
                "This picture model has no IP-Adapter that fits it (the published one is for SD 1.5): "
                "use shared attention for references instead."
            ) from None
        raise
    pipe._storybook_ip_adapter = location


def unload_ip_adapter(pipe) -> None:
    if getattr(pipe, "_storybook_ip_adapter", None):
        pipe.unload_ip_adapter()
        pipe._storybook_ip_adapter = None


@torch.inference_mode()
def ip_image_embeds(pipe, images: Sequence[Image.Image | None]) -> torch.Tensor:
    """(rows, 1, dim) image embeddings for the adapter; a row without a picture gets zeros (scale 0 then)."""
    encoder = pipe.image_encoder
    dim = encoder.config.projection_dim
    device, dtype = encoder.device, encoder.dtype
    out = torch.zeros(len(images), 1, dim, device=device, dtype=dtype)
    present = [i for i, im in enumerate(images) if im is not None]
    if present:
        pixels = pipe.feature_extractor([images[i].convert("RGB") for i in present], return_tensors="pt")
        embeds = encoder(pixels.pixel_values.to(device, dtype)).image_embeds
        out[present] = embeds.unsqueeze(1)
    return out
