"""The Illustrator: a diffusers text-to-image pipeline that draws every segment of a story.

Each picture has its own CPU torch.Generator seeded from a stored integer, so a seed draws the same
picture alone or in a batch, on any device type, and any page can be drawn again exactly.

Draft and final: a draft is the profile's draft steps (1 for SD-Turbo) decoded by the tiny preview
autoencoder, about a tenth of a final picture's work; a final picture is the profile's steps through
the full decoder. `finish_drafts` turns a draft into the finished form of the picture the user saw:
the same latent (given back, or drawn again exactly from the recorded settings) through the full
decoder. Refining the draft image-to-image is the other way offered (`method="refine"`): it adds the
detail of more steps but changes the picture and costs more (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from itertools import groupby
from typing import Any

import torch
from PIL import Image

from core.hardware import OPENVINO_DRAFTS_NOT_INSTALLED
from core.limits import MAX_CANDIDATES
from core.requests import PageSpec
from core.seeds import MAX_SEED, sub_seed
from engine.device import DeviceChoice, pick_device
from engine.errors import Cancelled, InputError, ModelUnavailable, OutOfMemory
from engine.loading import hub_kwargs, is_loaded, loaded_model, oom_guard
from engine.openvino_unet import check_runtime, compiled_unet, openvino_forward, runtime_from_env
from engine.profiles import REFERENCE_IP_ADAPTER, REFERENCE_SHARED_ATTENTION, Profile
from engine.references import (
    Reference,
    SharedPlan,
    ip_image_embeds,
    load_ip_adapter,
    shared_attention,
    unload_ip_adapter,
)

log = logging.getLogger(__name__)

MAX_SIDE = 1536
MAX_STEPS = 150


@dataclass(frozen=True)
class SpeedOptions:
    """Each optimisation can be switched off, so the benchmark can show what it buys."""

    channels_last: bool = True  # UNet/VAE convolutions in NHWC: tensor cores, oneDNN's CPU kernels
    sdpa: bool = True  # fused scaled-dot-product attention (off: the plain attention processor)
    compile: bool = False  # torch.compile the UNet (GPU only; pays off after a warm-up)
    fixed_batch: bool = False  # pad the last batch to full size, so a compiled UNet never recompiles
    preview: bool = False  # decode with the tiny preview autoencoder: drafts in a fraction of the time
    # The UNet's runtime on a CPU: torch, or OpenVINO where installed (engine.openvino_unet); STORYBOOK_CPU_RUNTIME.
    runtime: str = field(default_factory=runtime_from_env)


@dataclass(frozen=True)
class PictureRequest:
    key: Any  # the caller's name for this picture (a segment index or id)
    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int | None = None  # None: the profile's default
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    reference: Reference | None = None  # a character's reference picture steering this one
    draft: bool = False  # the profile's draft steps (unless steps is given) and the tiny decoder


FINISH_METHODS = ("decode", "refine")
REFINE_STRENGTH = 0.5  # refine: half the noise back onto the draft's latent, then the profile's steps


@dataclass
class DrawnPicture:
    """A drawn picture. settings: everything needed to draw it again exactly (reference included);
    metadata: what was learnt about it after drawing (characters on its page, candidate number, score)."""

    key: Any
    image: Image.Image
    settings: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    latents: torch.Tensor | None = None  # the denoised latent (1 x C x h x w, CPU float32) the image was decoded from


@dataclass(frozen=True)
class Defaults:
    steps: int
    guidance: float
    width: int
    height: int
    batch_size: int
    draft_steps: int = 1
    first_alone: bool = False  # the first picture in a batch of its own, then full batches

    @classmethod
    def from_profile(cls, profile: Profile, choice: DeviceChoice | None = None) -> Defaults:
        # On a CPU the first picture comes alone, ready after one picture's time instead of a batch's, and
        # the rest in batches: 1.7x faster per picture than one by one on a loaded machine, 3 % on a quieter
        # one (docs/benchmarks.md).
        first_alone = choice is not None and not choice.is_gpu
        return cls(
            profile.steps,
            profile.guidance,
            profile.width,
            profile.height,
            profile.batch_size,
            profile.draft_steps,
            first_alone,
        )


class _Stop(Exception):
    """Raised inside the step callback to leave the pipeline at once when the user cancels."""


def load_pipeline(location: str, choice: DeviceChoice):
    """A text-to-image pipeline from a model folder or hub id, on the device and in the number format chosen."""
    from diffusers import AutoPipelineForText2Image

    kwargs = dict(hub_kwargs(), dtype=choice.dtype)
    pipe = None
    if choice.dtype != torch.float32 and not os.path.isdir(location):
        try:  # half-precision weights where the repository has them: half the download and the load
            pipe = AutoPipelineForText2Image.from_pretrained(location, variant="fp16", **kwargs)
        except (OSError, ValueError):
            pipe = None
    if pipe is None:
        pipe = AutoPipelineForText2Image.from_pretrained(location, **kwargs)
    pipe = pipe.to(choice.device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_preview_decoder(location: str, choice: DeviceChoice):
    from diffusers import AutoencoderTiny

    return AutoencoderTiny.from_pretrained(location, **hub_kwargs(), dtype=choice.dtype).to(choice.device).eval()


def validate(request: PictureRequest, defaults: Defaults) -> PictureRequest:
    """Fill in defaults and refuse settings no pipeline can use, each with a sentence."""
    default_steps = defaults.draft_steps if request.draft else defaults.steps
    r = replace(
        request,
        steps=default_steps if request.steps is None else int(request.steps),
        guidance=defaults.guidance if request.guidance is None else float(request.guidance),
        width=defaults.width if request.width is None else int(request.width),
        height=defaults.height if request.height is None else int(request.height),
    )
    if not r.prompt or not r.prompt.strip():
        raise InputError("A picture needs a prompt: this page has no words to draw from.")
    if not 1 <= r.steps <= MAX_STEPS:
        raise InputError(f"Steps must be between 1 and {MAX_STEPS}; {r.steps} was asked for.")
    if not 0.0 <= r.guidance <= 30.0:
        raise InputError(f"Guidance must be between 0 and 30; {r.guidance} was asked for.")
    for side in (r.width, r.height):
        if side < 64 or side > MAX_SIDE or side % 8:
            raise InputError(
                f"Picture sides must be multiples of 8 between 64 and {MAX_SIDE} pixels; "
                f"{r.width}x{r.height} was asked for."
            )
    if not 0 <= int(r.seed) <= MAX_SEED:
        raise InputError(f"A seed must be a whole number between 0 and {MAX_SEED}.")
    if r.reference is not None:
        r.reference.check()
        if not 0 <= int(r.reference.seed) <= MAX_SEED:
            raise InputError(f"A seed must be a whole number between 0 and {MAX_SEED}.")
    return r


class Illustrator:
    """Draws pictures for requests with one loaded pipeline. Built by `open_illustrator`."""

    def __init__(
        self,
        pipe,
        model_id: str,
        choice: DeviceChoice,
        defaults: Defaults,
        speed: SpeedOptions = SpeedOptions(),
        preview_decoder=None,
        ip_adapter: str = "",
    ):
        self.pipe = pipe
        self.ip_adapter = ip_adapter  # the profile's IP-Adapter model reference ("" when it has none)
        self.model_id = model_id
        self.choice = choice
        self.defaults = defaults
        self.speed = speed
        self.preview_decoder = preview_decoder
        self._apply_speed_options()

    def _apply_speed_options(self) -> None:
        unload_ip_adapter(self.pipe)  # a cached pipeline comes back clean: the adapter loads when a page needs it
        unet = self.pipe.unet
        wanted = torch.channels_last if self.speed.channels_last else torch.contiguous_format
        unet.to(memory_format=wanted)
        self.pipe.vae.to(memory_format=wanted)
        if self.preview_decoder is not None:
            self.preview_decoder.to(memory_format=wanted)
        from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

        unet.set_attn_processor(AttnProcessor2_0() if self.speed.sdpa else AttnProcessor())
        if self.speed.compile and self.choice.is_gpu and not hasattr(unet, "_orig_mod"):
            self.pipe.unet = torch.compile(unet, mode="max-autotune-no-cudagraphs", fullgraph=False)
        self._openvino = None
        if self.speed.runtime == "openvino" and not self.choice.is_gpu:
            check_runtime("openvino")
            self._openvino = compiled_unet(unet, threads=torch.get_num_threads())

    def runtime_for(self, r: PictureRequest) -> str:
        """Which runtime draws this request: OpenVINO when chosen, on a CPU, for a page without a reference (and
        no IP-Adapter in the pipeline: its image embeddings need torch's attention processors)."""
        if self._openvino is None or r.reference is not None or getattr(self.pipe, "_storybook_ip_adapter", None):
            return "torch"
        return "openvino"

    @property
    def scheduler_name(self) -> str:
        return type(self.pipe.scheduler).__name__

    def uses_preview(self, r: PictureRequest) -> bool:
        return (r.draft or self.speed.preview) and self.preview_decoder is not None

    def settings_for(self, r: PictureRequest) -> dict:
        return {
            "model_id": self.model_id,
            "scheduler": self.scheduler_name,
            "seed": int(r.seed),
            "steps": r.steps,
            "guidance": r.guidance,
            "width": r.width,
            "height": r.height,
            "prompt": r.prompt,
            "negative_prompt": r.negative_prompt,
            "decoder": "preview" if self.uses_preview(r) else "full",
            "draft": bool(r.draft),
            # A latent drawn again in another number format differs in its last bits: finish in this one.
            "dtype": str(self.choice.dtype).removeprefix("torch."),
            **({"reference": r.reference.to_settings()} if r.reference is not None else {}),
            # Another runtime's kernels differ in the last bits: only recorded when it is not torch.
            **({"runtime": runtime} if (runtime := self.runtime_for(r)) != "torch" else {}),
        }

    def illustrate(
        self,
        requests: Sequence[PictureRequest],
        *,
        batch_size: int | None = None,
        on_image: Callable[[DrawnPicture], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        decode: bool = True,
    ) -> list[DrawnPicture]:
        """Draw every request, in batches of equal settings; report each picture as soon as it exists.

        The list returned is in the order of `requests`; on_image sees pictures in the order drawn.

        on_progress(done_steps, total_steps) is called after every denoising step; should_cancel()
        is asked at each step and stops the work within one step. decode=False keeps the latents only
        (each picture's image is then None): finishing a draft needs its latent, not its preview.
        """
        requests = [validate(r, self.defaults) for r in requests]
        # An explicit batch size draws exactly those batches; the device's default may put the first alone.
        first_alone = self.defaults.first_alone and batch_size is None
        batch_size = max(1, int(batch_size or self.defaults.batch_size))

        def shape(r: PictureRequest) -> tuple:
            ref = r.reference
            how = None if ref is None else (ref.method, ref.share_rate if ref.method != REFERENCE_IP_ADAPTER else 0.0)
            return (r.steps, r.guidance, r.width, r.height, self.uses_preview(r), how or ("", 0.0))

        batches: list[list[int]] = []  # indices into requests
        for _, group in groupby(
            sorted(range(len(requests)), key=lambda i: shape(requests[i])), key=lambda i: shape(requests[i])
        ):
            group = list(group)
            if first_alone and not batches and batch_size > 1 and len(group) > 1:
                batches.append(group[:1])
                group = group[1:]
            batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
        total_steps = sum(requests[b[0]].steps for b in batches) or 1
        done_steps = 0
        results: dict[int, DrawnPicture] = {}
        for indices in batches:
            if should_cancel and should_cancel():
                raise Cancelled()
            batch = [requests[i] for i in indices]
            try:
                images, latents = self._draw(
                    batch, batch_size, done_steps, total_steps, on_progress, should_cancel, decode=decode
                )
            except OutOfMemory:
                if len(batch) == 1:
                    raise
                # One retry, a picture at a time: oom_guard has freed what the failed batch held. If a
                # single picture does not fit either, its OutOfMemory sentence goes to the person.
                log.warning("Out of GPU memory drawing %d pictures at once; drawing them one at a time", len(batch))
                images, latents = [], []
                for request in batch:
                    one_image, one_latent = self._draw(
                        [request], 1, done_steps, total_steps, on_progress, should_cancel, decode=decode
                    )
                    images += one_image
                    latents += one_latent
            done_steps += batch[0].steps
            for i, r, image, latent in zip(indices, batch, images, latents):
                result = DrawnPicture(key=r.key, image=image, settings=self.settings_for(r), latents=latent)
                results[i] = result
                if on_image:
                    on_image(result)
        # Drawn grouped by size and steps, handed back in the order asked for.
        return [results[i] for i in range(len(requests))]

    def _draw(
        self, batch, batch_size, done_before, total_steps, on_progress, should_cancel, *, decode: bool = True
    ) -> tuple[list, list[torch.Tensor]]:
        padded = list(batch)
        if self.speed.fixed_batch and len(padded) < batch_size:
            padded += [batch[-1]] * (batch_size - len(padded))
        first = batch[0]

        def step_end(pipe, step, timestep, callback_kwargs):
            if on_progress:
                on_progress(done_before + step + 1, total_steps)
            if should_cancel and should_cancel():
                raise _Stop()
            return callback_kwargs

        use_preview = self.uses_preview(first)
        method = first.reference.method if first.reference is not None else ""
        # Shared attention: the references are drawn again in front of the pages, one row per reference.
        rows: list[tuple[str, str, int]] = []
        if method == REFERENCE_SHARED_ATTENTION:
            rows = list(dict.fromkeys(r.reference.row_key() for r in padded))
        prompts = [row[0] for row in rows] + [r.prompt for r in padded]
        negatives = [row[1] for row in rows] + [r.negative_prompt for r in padded]
        seeds = [row[2] for row in rows] + [int(r.seed) for r in padded]
        extra: dict[str, Any] = {}
        if method == REFERENCE_IP_ADAPTER and not getattr(self.pipe, "_storybook_ip_adapter", None):
            self._load_ip_adapter()
        if getattr(self.pipe, "_storybook_ip_adapter", None):
            # Every batch of a pipeline holding the adapter passes embeddings; without references at scale 0.
            ip_rows = [r.reference.image if method == REFERENCE_IP_ADAPTER else None for r in padded]
            embeds = ip_image_embeds(self.pipe, ip_rows)
            if first.guidance > 1:
                embeds = torch.cat([torch.zeros_like(embeds), embeds])
            self.pipe.set_ip_adapter_scale(float(first.reference.scale) if method == REFERENCE_IP_ADAPTER else 0.0)
            extra["ip_adapter_image_embeds"] = [embeds]
        try:
            with ExitStack() as stack:
                stack.enter_context(oom_guard(f"drawing {len(batch)} picture(s) at {first.width}x{first.height}"))
                stack.enter_context(torch.inference_mode())
                if rows:
                    plan = SharedPlan(
                        [None] * len(rows) + [rows.index(r.reference.row_key()) for r in padded],
                        first.reference.share_rate,
                    )
                    stack.enter_context(shared_attention(self.pipe.unet, plan))
                if self.runtime_for(first) == "openvino":
                    stack.enter_context(openvino_forward(self.pipe.unet, self._openvino))
                out = self.pipe(
                    prompt=prompts,
                    negative_prompt=negatives if first.guidance > 1 else None,
                    num_inference_steps=first.steps,
                    guidance_scale=first.guidance,
                    width=first.width,
                    height=first.height,
                    generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds],
                    output_type="latent",
                    callback_on_step_end=step_end,
                    **extra,
                )
                # Shared attention's reference rows come first; only the pages' latents are decoded.
                latents = out.images[len(rows) : len(rows) + len(batch)]
                if not decode:
                    images = [None] * len(batch)
                elif use_preview:
                    images = self._decode_preview(latents)
                else:
                    images = self._decode_full(latents)
        except _Stop:
            raise Cancelled() from None
        return images, [latent.unsqueeze(0).float().cpu() for latent in latents]

    def _load_ip_adapter(self) -> None:
        from engine.loading import hub_kwargs
        from engine.profiles import resolve_model

        if not self.ip_adapter:
            raise InputError(
                "This profile's picture model has no IP-Adapter: draw the pages with shared attention, "
                "or without references."
            )
        load_ip_adapter(self.pipe, resolve_model(self.ip_adapter), hub_kwargs()["local_files_only"])

    def _decode_preview(self, latents: torch.Tensor) -> list[Image.Image]:
        decoded = self.preview_decoder.decode(latents.to(self.preview_decoder.dtype)).sample
        return self.pipe.image_processor.postprocess(decoded.float(), output_type="pil")

    def _decode_full(self, latents: torch.Tensor) -> list[Image.Image]:
        """What the pipeline does after its last step: full decoder, safety checker if it has one, to PIL."""
        vae = self.pipe.vae
        image = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
        flagged = None
        if getattr(self.pipe, "safety_checker", None) is not None:
            image, flagged = self.pipe.run_safety_checker(image, self.choice.device, image.dtype)
        denormalize = [True] * image.shape[0] if flagged is None else [not f for f in flagged]
        return self.pipe.image_processor.postprocess(image, output_type="pil", do_denormalize=denormalize)

    def finish(
        self,
        drafts: Sequence[tuple[Any, dict]],
        *,
        method: str = "decode",
        latents: dict | None = None,
        reference_images: Mapping[str, Image.Image] | None = None,
        on_image: Callable[[DrawnPicture], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> list[DrawnPicture]:
        """Finish drafts, given as (key, the draft's recorded settings), into full-decoder pictures.

        decode: the draft's own latent through the full decoder. The latent is latents[key] when the
        caller kept it (no UNet work, exact), else it is drawn again alone from the settings (seed, prompt,
        steps, size and number format are recorded): exact for a draft that was drawn alone, within a
        level or so of 255 for one drawn in a batch, whose matrix shapes changed its last bits. Keep
        `DrawnPicture.latents` (64 KB at 512 px) to finish exactly. The result is the picture the user
        saw, decoded in full.
        refine: REFINE_STRENGTH of the noise put back onto that latent, then the profile's steps
        image-to-image and the full decoder: more detail, the same composition, not the same pixels.

        A draft drawn with a character's reference keeps it: its latent is drawn again with the same
        reference (an IP-Adapter one needs reference_images[name], the picture itself), and the finished
        settings record it. Such a draft is finished by decode only: refining would redraw without it.
        """
        if method not in FINISH_METHODS:
            raise InputError(f"A draft is finished by 'decode' or 'refine', not '{method}'.")
        if method == "refine" and any(settings.get("reference") for _, settings in drafts):
            raise InputError(
                "A draft drawn with a character's reference picture is finished by 'decode' only: refining it "
                "would draw it again without the reference, and the character would change."
            )
        latents = dict(latents or {})
        pictures = dict(reference_images or {})
        requests = {}
        for key, settings in drafts:
            stored = settings.get("reference") or {}
            if key in latents and stored:
                # The latent is kept: decoding it needs no reference, only the rest of its settings.
                settings = {name: value for name, value in settings.items() if name != "reference"}
            r = request_from_settings(key, settings, reference_image=pictures.get(stored.get("name", "")))
            if None in (r.steps, r.guidance, r.width, r.height):
                raise InputError(_SETTINGS_TOO_LITTLE)  # defaults would draw another picture, not the draft
            requests[key] = r
        stored_references = {key: settings.get("reference") for key, settings in drafts}
        results = []
        total = len(requests)
        # Picture by picture, so the first finished picture comes after one picture's work.
        for done, (key, r) in enumerate(requests.items()):
            if should_cancel and should_cancel():
                raise Cancelled()
            if key not in latents:
                # Alone, as the first draft of a book is drawn: a batch's matrix shapes change a latent's last bits.
                (redrawn,) = self.illustrate([r], batch_size=1, should_cancel=should_cancel, decode=False)
                latents[key] = redrawn.latents
            latent = latents[key]
            with oom_guard(f"finishing a {r.width}x{r.height} draft"), torch.inference_mode():
                if method == "refine":
                    latent = self._refine(r, latent)
                image = self._decode_full(latent.to(self.choice.device, self.pipe.vae.dtype))[0]
            settings = {
                **self.settings_for(replace(r, draft=False)),
                "finished_from": "draft",
                "finish": method,
                "draft_steps": r.steps,
                **({"reference": stored_references[key]} if stored_references.get(key) else {}),
            }
            if method == "refine":
                settings.update(steps=self.defaults.steps, refine_strength=REFINE_STRENGTH)
            result = DrawnPicture(key=key, image=image, settings=settings, latents=latent.float().cpu())
            results.append(result)
            if on_image:
                on_image(result)
            if on_progress:
                on_progress(done + 1, total)
        return results

    def _refine(self, r: PictureRequest, latent: torch.Tensor) -> torch.Tensor:
        from diffusers import AutoPipelineForImage2Image

        if getattr(self, "_img2img", None) is None:
            # Shares every component with the text-to-image pipeline: no memory, no load.
            self._img2img = AutoPipelineForImage2Image.from_pipe(self.pipe)
            self._img2img.set_progress_bar_config(disable=True)
        steps = max(self.defaults.steps, round(1 / REFINE_STRENGTH))
        with ExitStack() as stack:
            # The refined picture's settings name the runtime (settings_for): its steps run there, as the draft's did.
            if self.runtime_for(r) == "openvino":
                stack.enter_context(openvino_forward(self.pipe.unet, self._openvino))
            out = self._img2img(
                prompt=r.prompt,
                negative_prompt=r.negative_prompt if r.guidance > 1 else None,
                image=latent.to(self.choice.device, self.pipe.unet.dtype),
                strength=REFINE_STRENGTH,
                num_inference_steps=steps,
                guidance_scale=r.guidance,
                generator=torch.Generator("cpu").manual_seed(int(r.seed)),
                output_type="latent",
            )
        return out.images


def illustrator_loaded(profile: Profile, choice: DeviceChoice | None = None) -> bool:
    """Whether the profile's picture model is in memory; False: the next drawing reads it from disk first."""
    return is_loaded("illustrator", profile.model("illustrator"), choice or pick_device())


def finishing_choice(drafts: Sequence[tuple[Any, dict]]) -> DeviceChoice:
    """Where and in which number format drafts are finished: on a CPU, the format they were drawn in when they
    all say the same (a latent drawn again is then the draft's own to the last bit); else the default."""
    recorded = {str(settings.get("dtype") or "") for _, settings in drafts}
    device = pick_device()
    same = recorded.pop() if len(recorded) == 1 else ""
    if same in {"float32", "bfloat16"} and not device.is_gpu:
        device = pick_device("cpu", same)
    return device


def draft_by_default(profile: Profile, choice: DeviceChoice | None = None) -> bool:
    """Whether pictures start as drafts: on a CPU, for profiles whose drafts the bench favours there."""
    choice = choice or pick_device()
    return not choice.is_gpu and profile.draft_on_cpu


@contextmanager
def open_illustrator(
    profile: Profile, choice: DeviceChoice | None = None, *, speed: SpeedOptions | None = None, draft: bool = False
) -> Iterator[Illustrator]:
    """The profile's illustrator, loaded once per process and pinned in the cache while in use.

    draft=True also loads the tiny preview decoder that drafts are decoded with (when the profile has one).
    """
    choice = choice or pick_device()
    speed = speed or SpeedOptions()
    ref = profile.model("illustrator")  # on the CPU, loaded_model fits torch's threads to the model
    with ExitStack() as stack:
        pipe = stack.enter_context(loaded_model("illustrator", ref, choice, lambda loc: load_pipeline(loc, choice)))
        decoder = None
        if (speed.preview or draft) and profile.model("preview_decoder"):
            try:
                decoder = stack.enter_context(
                    loaded_model(
                        "preview_decoder",
                        profile.model("preview_decoder"),
                        choice,
                        lambda loc: _load_preview_decoder(loc, choice),
                    )
                )
            except ModelUnavailable:
                speed = replace(speed, preview=False)  # no preview decoder: full decoding still works
        yield Illustrator(
            pipe,
            ref,
            choice,
            Defaults.from_profile(profile, choice),
            speed,
            decoder,
            ip_adapter=profile.model("ip_adapter"),
        )


_SETTINGS_TOO_LITTLE = (
    "This picture's settings do not say how it was drawn (prompt, seed, steps, guidance, size), "
    "so it cannot be drawn again exactly or finished: draw the page again instead."
)


def request_from_settings(key: Any, settings: dict, reference_image: Image.Image | None = None) -> PictureRequest:
    """The request that draws a stored picture again exactly, from the settings it was saved with:
    prompt, seed, steps, guidance, size, draft or not, and the reference it was drawn with.

    A picture drawn with an IP-Adapter reference needs that picture back (reference_image); one that is
    not the picture it was drawn with (its SHA-256 differs) is refused, since the page would change.
    """
    try:
        prompt, seed = str(settings["prompt"]), int(settings["seed"])
        numbers = {
            name: None if settings.get(name) is None else kind(settings[name])
            for name, kind in (("steps", int), ("guidance", float), ("width", int), ("height", int))
        }
    except (KeyError, TypeError, ValueError):
        raise InputError(_SETTINGS_TOO_LITTLE) from None
    reference = None
    stored = settings.get("reference")
    if stored:
        method = stored.get("method")
        if method == REFERENCE_SHARED_ATTENTION:
            reference = Reference(
                name=stored.get("name", ""),
                method=method,
                prompt=stored.get("prompt", ""),
                negative_prompt=stored.get("negative_prompt", ""),
                seed=int(stored.get("seed", 0)),
                share_rate=float(stored.get("share_rate", 0.5)),
                reference_id=stored.get("reference_id", ""),
            )
        elif method == REFERENCE_IP_ADAPTER:
            reference = Reference(
                name=stored.get("name", ""),
                method=method,
                scale=float(stored.get("scale", 0.6)),
                image=reference_image,
                reference_id=stored.get("reference_id", ""),
            )
            if reference_image is None:
                raise InputError(
                    f"This picture was drawn with {reference.name}'s reference picture: it is needed to draw it again."
                )
            if stored.get("image_sha256") and reference.image_sha256 != stored["image_sha256"]:
                raise InputError(
                    f"{reference.name}'s reference picture has changed since this picture was drawn, so it "
                    "would not come out the same."
                )
        else:
            raise InputError(f"The stored reference method {method!r} is not one this version knows.")
    return PictureRequest(
        key=key,
        prompt=prompt,
        negative_prompt=str(settings.get("negative_prompt") or ""),
        seed=seed,
        reference=reference,
        draft=bool(settings.get("draft", False)),
        **numbers,
    )


def candidate_seed(page_seed: int, candidate: int) -> int:
    """Candidate 0 is the page's own seed (one candidate draws what it always drew); others derive from it."""
    return int(page_seed) if candidate == 0 else sub_seed(int(page_seed), "candidate", int(candidate))


def page_reference(present: Sequence[str], references: Mapping[str, Reference] | None) -> Reference | None:
    """The reference a page is drawn with: that of the first character on it who has one."""
    for name in present:
        if references and name in references:
            return references[name]
    return None


def draw_references(
    characters: Sequence[tuple[str, str]],
    profile: Profile,
    *,
    style: str,
    base_seed: int,
    method: str | None = None,
    share_rate: float = 0.5,
    scale: float = 0.6,
    uploaded: Mapping[str, Image.Image] | None = None,
    choice: DeviceChoice | None = None,
    speed: SpeedOptions | None = None,
) -> tuple[dict[str, Reference], list[DrawnPicture]]:
    """A reference picture for each described character: drawn from its description (seed
    sub_seed(base_seed, "reference", name)) unless `uploaded` has one; and the Reference each page uses.

    method: "shared_attention" or "ip_adapter" (default: the profile's own); an uploaded picture needs the
    IP-Adapter, since shared attention redraws the reference from its prompt and seed.
    """
    from engine.prompts import build_prompt
    from engine.references import reference_support

    method = method or reference_support(profile)[0]
    if method not in profile.reference_methods():
        raise InputError(
            reference_support(profile)[1]
            if not method
            else f"The '{profile.name}' profile cannot "
            f"draw references with {method}; it can with: {', '.join(profile.reference_methods())}."
        )
    uploaded = dict(uploaded or {})
    if uploaded and method != REFERENCE_IP_ADAPTER:
        raise InputError("An uploaded reference picture needs the IP-Adapter (an SD 1.5 based profile).")
    wanted = [(n, d) for n, d in characters if (n or "").strip() and ((d or "").strip() or n in uploaded)]
    requests = []
    with open_illustrator(profile, choice, speed=speed) as illustrator:
        tokenizer = getattr(illustrator.pipe, "tokenizer", None)
        for name, description in wanted:
            if name in uploaded:
                continue
            pair = build_prompt(f"{description}, {name}", style, characters=[(name, description)], tokenizer=tokenizer)
            requests.append(
                PictureRequest(
                    key=name,
                    prompt=pair.prompt,
                    negative_prompt=pair.negative_prompt,
                    seed=sub_seed(int(base_seed), "reference", name),
                )
            )
        drawn = illustrator.illustrate(requests) if requests else []
    references: dict[str, Reference] = {}
    for picture in drawn:
        s = picture.settings
        references[picture.key] = Reference(
            name=picture.key,
            method=method,
            prompt=s["prompt"],
            negative_prompt=s["negative_prompt"],
            seed=s["seed"],
            share_rate=share_rate,
            scale=scale,
            image=picture.image,
        )
    for name, image in uploaded.items():
        references[name] = Reference(name=name, method=method, scale=scale, image=image.convert("RGB"))
    return references, drawn


def illustrate_pages(
    pages: Sequence[PageSpec],
    profile: Profile,
    *,
    style: str,
    characters: Sequence[tuple[str, str]] = (),
    setting: str | None = None,
    choice: DeviceChoice | None = None,
    speed: SpeedOptions | None = None,
    batch_size: int | None = None,
    on_image: Callable[[DrawnPicture], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    candidates: int = 1,
    score: bool = False,
    references: Mapping[str, Reference] | None = None,
    cast: Sequence[Sequence[str]] | None = None,
    on_chosen: Callable[[DrawnPicture], None] | None = None,
    draft: bool | None = None,
) -> list[DrawnPicture]:
    """Turn pages into prompts fitted to the loaded model's text encoder, then draw them all.

    characters: (name, description) pairs, described on the pages engine.characters finds them on
    (named, or as "she" or "the old keeper"), unless `cast` gives the names on each page; setting: where
    and when the story happens, on every page (engine.prompts.build_prompt).

    candidates: N pictures per page (1..8) in the same batches, candidate k with seed
    `candidate_seed(page.seed, k)`; all are returned (page by page, candidate by candidate) and the one
    with the best ranker CLIP score against the page's words is chosen (metadata["chosen"]). score:
    score every picture even when N is 1. references: character name -> Reference; a page is drawn
    with the reference of the first character on it that has one.

    Each picture's metadata: characters (on its page), candidate, candidates, chosen and, when scored,
    clip_score and clip_model. on_image sees each picture once drawn and scored; on_chosen each page's
    chosen picture once all its candidates are in.

    draft: quick drafts (True), final pictures (False), or what suits this device (None:
    `draft_by_default`); candidates, scores and references work the same for drafts.
    """
    from engine.characters import page_characters
    from engine.prompts import build_prompt

    if not 1 <= int(candidates) <= MAX_CANDIDATES:
        raise InputError(f"Draw between 1 and {MAX_CANDIDATES} candidates per page; {candidates} was asked for.")
    candidates = int(candidates)
    if cast is None:
        cast = page_characters([page.text for page in pages], characters) if characters else [[] for _ in pages]
    if len(cast) != len(pages):
        raise InputError("The characters on each page must be given for every page.")
    scoring = bool(score) or candidates > 1
    by_key = {page.key: (page, list(present)) for page, present in zip(pages, cast)}
    drawn: dict[Any, list[DrawnPicture]] = {page.key: [] for page in pages}
    choice = choice or pick_device()
    draft = draft_by_default(profile, choice) if draft is None else bool(draft)
    with ExitStack() as stack:
        illustrator = stack.enter_context(open_illustrator(profile, choice, speed=speed, draft=draft))
        scorer = None
        if scoring:
            from engine.scoring import open_scorer

            scorer = stack.enter_context(open_scorer(profile, "ranker", illustrator.choice))
        tokenizer = getattr(illustrator.pipe, "tokenizer", None)
        requests = []
        for page, present in zip(pages, cast):
            pair = build_prompt(
                page.text,
                style,
                characters=list(characters) or None,
                setting=setting or None,
                override=page.prompt_override,
                tokenizer=tokenizer,
                present=list(present),
            )
            negative = pair.negative_prompt if page.negative_prompt is None else page.negative_prompt
            reference = page_reference(present, references)
            for k in range(candidates):
                requests.append(
                    PictureRequest(
                        key=(page.key, k),
                        prompt=pair.prompt,
                        negative_prompt=negative,
                        seed=candidate_seed(page.seed, k),
                        reference=reference,
                        draft=draft,
                    )
                )

        def arrived(picture: DrawnPicture) -> None:
            page_key, k = picture.key
            page, present = by_key[page_key]
            picture.key = page_key
            picture.metadata.update(characters=present, candidate=k, candidates=candidates, chosen=candidates == 1)
            if scorer is not None:
                picture.metadata["clip_score"] = scorer.score([picture.image], [page.text])[0]
                picture.metadata["clip_model"] = scorer.model_id
            drawn[page_key].append(picture)
            if on_image:
                on_image(picture)
            if len(drawn[page_key]) == candidates:
                best = choose_best(drawn[page_key])
                for other in drawn[page_key]:
                    other.metadata["chosen"] = other is best
                if on_chosen:
                    on_chosen(best)

        illustrator.illustrate(
            requests, batch_size=batch_size, on_image=arrived, on_progress=on_progress, should_cancel=should_cancel
        )
    return [p for page in pages for p in sorted(drawn[page.key], key=lambda p: p.metadata["candidate"])]


def choose_best(pictures: Sequence[DrawnPicture]) -> DrawnPicture:
    """The picture with the highest clip_score (ties and unscored: the lowest candidate number)."""
    return max(
        sorted(pictures, key=lambda p: p.metadata.get("candidate", 0)),
        key=lambda p: p.metadata.get("clip_score", float("-inf")),
    )


def chosen(pictures: Sequence[DrawnPicture]) -> list[DrawnPicture]:
    """The chosen picture of each page, in page order, from what illustrate_pages returned."""
    return [p for p in pictures if p.metadata.get("chosen", True)]


def finish_drafts(
    drafts: Sequence[tuple[Any, dict]],
    profile: Profile,
    *,
    method: str = "decode",
    latents: dict | None = None,
    reference_images: Mapping[str, Image.Image] | None = None,
    choice: DeviceChoice | None = None,
    on_image: Callable[[DrawnPicture], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> list[DrawnPicture]:
    """Finish drafts from their stored settings: (key, settings) pairs, as `DrawnPicture.settings` recorded them.

    Runs in the number format the drafts were drawn in, so a latent drawn again is the draft's own to
    the last bit (on the same device). See Illustrator.finish for the methods.
    """
    drafts = list(drafts)
    if not drafts:
        return []
    choice = choice or finishing_choice(drafts)
    # A latent is drawn again by the runtime that drew the draft (settings say "runtime" when not torch).
    by_runtime: dict[str, list[int]] = {}  # runtime -> indices into drafts
    for i, (_, settings) in enumerate(drafts):
        by_runtime.setdefault(str(settings.get("runtime") or "torch"), []).append(i)
    from engine import openvino_unet

    if "openvino" in by_runtime and not choice.is_gpu and not openvino_unet.openvino_installed():
        # check_runtime's own advice (unset STORYBOOK_CPU_RUNTIME) would not help: the drafts say how they were drawn.
        raise InputError(OPENVINO_DRAFTS_NOT_INSTALLED)
    finished: dict[int, DrawnPicture] = {}
    for runtime, indices in by_runtime.items():
        before = len(finished)

        def progress(done: int, _total: int, before: int = before) -> None:
            if on_progress:
                on_progress(before + done, len(drafts))

        with open_illustrator(profile, choice, speed=SpeedOptions(runtime=runtime), draft=True) as illustrator:
            done = illustrator.finish(
                [drafts[i] for i in indices],
                method=method,
                latents=latents,
                reference_images=reference_images,
                on_image=on_image,
                on_progress=progress,
                should_cancel=should_cancel,
            )
        finished.update(zip(indices, done))
    return [finished[i] for i in range(len(drafts))]
