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

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from itertools import groupby
from typing import Any

import torch
from PIL import Image

from core.requests import PageSpec
from core.seeds import MAX_SEED
from engine.device import DeviceChoice, pick_device, use_all_cores
from engine.errors import Cancelled, InputError, ModelUnavailable
from engine.loading import hub_kwargs, loaded_model, oom_guard
from engine.profiles import Profile

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
    draft: bool = False  # the profile's draft steps (unless steps is given) and the tiny decoder


FINISH_METHODS = ("decode", "refine")
REFINE_STRENGTH = 0.5  # refine: half the noise back onto the draft's latent, then the profile's steps


@dataclass
class DrawnPicture:
    key: Any
    image: Image.Image
    settings: dict = field(default_factory=dict)
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


def _load_pipeline(location: str, choice: DeviceChoice):
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
    ):
        self.pipe = pipe
        self.model_id = model_id
        self.choice = choice
        self.defaults = defaults
        self.speed = speed
        self.preview_decoder = preview_decoder
        self._apply_speed_options()

    def _apply_speed_options(self) -> None:
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
        shape = lambda r: (r.steps, r.guidance, r.width, r.height, self.uses_preview(r))  # noqa: E731
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
            images, latents = self._draw(
                batch, batch_size, done_steps, total_steps, on_progress, should_cancel, decode=decode
            )
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
        try:
            with oom_guard(f"drawing {len(batch)} picture(s) at {first.width}x{first.height}"), torch.inference_mode():
                out = self.pipe(
                    prompt=[r.prompt for r in padded],
                    negative_prompt=[r.negative_prompt for r in padded] if first.guidance > 1 else None,
                    num_inference_steps=first.steps,
                    guidance_scale=first.guidance,
                    width=first.width,
                    height=first.height,
                    generator=[torch.Generator("cpu").manual_seed(int(r.seed)) for r in padded],
                    output_type="latent",
                    callback_on_step_end=step_end,
                )
                latents = out.images[: len(batch)]
                if not decode:
                    images = [None] * len(batch)
                elif use_preview:
                    images = self._decode_preview(latents)
                else:
                    images = self._decode_full(latents)
        except _Stop:
            raise Cancelled() from None
        return images, [latent.unsqueeze(0).float().cpu() for latent in latents]

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
        """
        if method not in FINISH_METHODS:
            raise InputError(f"A draft is finished by 'decode' or 'refine', not '{method}'.")
        latents = dict(latents or {})
        requests = {key: request_from_settings(key, settings) for key, settings in drafts}
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


def request_from_settings(key: Any, settings: dict) -> PictureRequest:
    """The request that draws a recorded picture again: prompt, seed, steps, guidance, size, draft or not."""
    try:
        return PictureRequest(
            key=key,
            prompt=str(settings["prompt"]),
            negative_prompt=str(settings.get("negative_prompt") or ""),
            seed=int(settings["seed"]),
            steps=int(settings["steps"]),
            guidance=float(settings["guidance"]),
            width=int(settings["width"]),
            height=int(settings["height"]),
            draft=bool(settings.get("draft", False)),
        )
    except (KeyError, TypeError, ValueError):
        raise InputError(
            "This picture's settings do not say how it was drawn (prompt, seed, steps, guidance, size), "
            "so it cannot be finished: draw the page again instead."
        ) from None


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
    if not choice.is_gpu:
        use_all_cores()
    ref = profile.model("illustrator")
    with ExitStack() as stack:
        pipe = stack.enter_context(loaded_model("illustrator", ref, choice, lambda loc: _load_pipeline(loc, choice)))
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
        yield Illustrator(pipe, ref, choice, Defaults.from_profile(profile, choice), speed, decoder)


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
    draft: bool | None = None,
) -> list[DrawnPicture]:
    """Turn pages into prompts fitted to the loaded model's text encoder, then draw them all.

    characters: (name, description) pairs, described on the pages that name them; setting: where and
    when the story happens, on every page (engine.prompts.build_prompt). draft: quick drafts (True),
    final pictures (False), or what suits this device (None: `draft_by_default`)."""
    from engine.prompts import build_prompt

    choice = choice or pick_device()
    draft = draft_by_default(profile, choice) if draft is None else bool(draft)
    with open_illustrator(profile, choice, speed=speed, draft=draft) as illustrator:
        tokenizer = getattr(illustrator.pipe, "tokenizer", None)
        requests = []
        for page in pages:
            pair = build_prompt(
                page.text,
                style,
                characters=list(characters) or None,
                setting=setting or None,
                override=page.prompt_override,
                tokenizer=tokenizer,
            )
            negative = pair.negative_prompt if page.negative_prompt is None else page.negative_prompt
            requests.append(
                PictureRequest(key=page.key, prompt=pair.prompt, negative_prompt=negative, seed=page.seed, draft=draft)
            )
        return illustrator.illustrate(
            requests, batch_size=batch_size, on_image=on_image, on_progress=on_progress, should_cancel=should_cancel
        )


def finish_drafts(
    drafts: Sequence[tuple[Any, dict]],
    profile: Profile,
    *,
    method: str = "decode",
    latents: dict | None = None,
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
    if choice is None:
        recorded = {str(settings.get("dtype") or "") for _, settings in drafts}
        device = pick_device()
        same = recorded.pop() if len(recorded) == 1 else ""
        if same in {"float32", "bfloat16"} and not device.is_gpu:
            device = pick_device("cpu", same)
        choice = device
    with open_illustrator(profile, choice, draft=True) as illustrator:
        return illustrator.finish(
            drafts,
            method=method,
            latents=latents,
            on_image=on_image,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )
