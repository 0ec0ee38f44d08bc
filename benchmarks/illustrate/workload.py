"""The benchmark's fixed job: pictures for two stories, captions, a story; and the variants that run it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.errors import InputError

SEED_PROJECT = {
    "seconds_per_image": (15, 20),
    "seconds_per_three_segment_story": (45, 60),
    "where": "a data-centre GPU, fp32, pipeline built per request",
}


STAGES = ("load", "text_encoding", "denoising", "decoding", "png_encoding", "saving", "captioning", "story")
PICTURE_STAGES = STAGES[:6]
STAGE_LABELS = {
    "load": "load (models)",
    "text_encoding": "text encoding",
    "denoising": "denoising",
    "decoding": "decoding",
    "png_encoding": "PNG encoding",
    "saving": "saving",
    "captioning": "captioning",
    "story": "story writing",
}

PROMPTS = (
    "a little red fox on a windy island, watercolor illustration",
    "an old white lighthouse by the grey sea at night, watercolor illustration",
    "a storm with tall waves and dark clouds over the sea, watercolor illustration",
    "a small fox climbing long spiral stairs in the dark, watercolor illustration",
    "a golden lamp glowing bright across the water, watercolor illustration",
    "fishing boats coming home to a harbour in the morning, watercolor illustration",
    "a brave girl and her dog walking in a green forest, pencil sketch",
    "a tall tree with a little house in its branches, pencil sketch",
    "a blue river and a small boat under the moon, pencil sketch",
    "a dragon asleep on a hill of red flowers, pencil sketch",
    "a cake and a birthday party in a garden, pencil sketch",
    "the girl and her dog asleep under the stars, pencil sketch",
)
NEGATIVE_PROMPT = "blurry, text, watermark, deformed"
STORY_CAPTIONS = (
    "a little red fox standing on a rock by the sea",
    "an old lighthouse on an island during a storm",
    "a fox climbing a spiral staircase holding a match",
    "fishing boats sailing into a harbour at sunrise",
    "a girl and a dog walking through a forest",
    "a small house in the branches of a tall tree",
    "a boat on a river under a full moon",
    "a dragon sleeping on a hill covered in flowers",
    "a birthday cake on a table in a garden",
    "a girl and a dog asleep under the stars",
    "a castle on a mountain above the clouds",
    "a rabbit reading a book under a tree",
)
MAX_IMAGES = len(PROMPTS) * 8


# --- the workload ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    arch: str
    images: int  # pictures in all, split into `stories` stories
    stories: int
    size: int
    steps: int  # naive and engine-same-steps
    guidance: float
    captions: int  # pictures captioned, and pictures the story is written for
    story_words: int  # the storyteller's words per picture

    def story_sizes(self) -> list[int]:
        stories = max(1, min(self.stories, self.images))
        base, extra = divmod(self.images, stories)
        return [base + (1 if i < extra else 0) for i in range(stories)]

    def story_tokens(self) -> int:
        from engine.storyteller import TITLE_MAX_NEW_TOKENS, max_new_tokens_for

        return self.captions * max_new_tokens_for(self.story_words) + TITLE_MAX_NEW_TOKENS if self.captions else 0

    def describe(self) -> str:
        sizes = self.story_sizes()
        text = (
            f"{self.images} picture{'s' if self.images != 1 else ''} at {self.size}x{self.size} in "
            f"{len(sizes)} stor{'ies' if len(sizes) != 1 else 'y'} ({'+'.join(map(str, sizes))}), "
            f"{self.steps} step{'s' if self.steps != 1 else ''} at guidance {self.guidance:g} "
            f"(naive, engine-same-steps)"
        )
        if self.captions:
            text += (
                f"; captions for {self.captions}; a story of {self.captions} passage"
                f"{'s' if self.captions != 1 else ''} ({self.story_tokens()} tokens)"
            )
        return text


def picture_requests(workload: Workload, *, steps: int | None, guidance: float | None):
    """The pictures of the job, story by story: fixed prompts and seeds, so every variant draws the same."""
    from engine.illustrate import PictureRequest

    stories, index = [], 0
    for size in workload.story_sizes():
        story = []
        for _ in range(size):
            story.append(
                PictureRequest(
                    key=index,
                    prompt=PROMPTS[index % len(PROMPTS)],
                    negative_prompt=NEGATIVE_PROMPT,
                    seed=1000 + index,
                    steps=steps,
                    guidance=guidance,
                    width=workload.size,
                    height=workload.size,
                )
            )
            index += 1
        stories.append(story)
    return stories


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    naive: bool = False
    profile_steps: bool = False  # the profile's steps and guidance instead of the workload's
    speed: Any = None  # SpeedOptions for engine variants
    own_pipeline: bool = False  # a separate copy of the pipeline (its memory layout or graph differs)
    whole_job: bool = True  # captions and story as well as the pictures
    gpu_only: bool = False
    opt_in: bool = False  # run only when named in --variants
    saver_thread: bool = True  # PNG encoding and saving on a saver thread, as the studio's job worker does
    cpu_only: bool = False
    dtype: str | None = None  # the engine's number format for this variant (None: the run's, --dtype or detected)
    draft: bool = False  # drafts: the profile's draft steps and the tiny decoder
    batch_size: int | None = None  # None: the profile's batch size for the device (one at a time on a CPU)
    finish: str | None = None  # finish the job's drafts (drawn from their settings) by this method instead

    def steps_and_guidance(self, workload: Workload, profile) -> tuple[int, float]:
        if self.draft or self.finish:
            return profile.draft_steps, profile.guidance
        if self.profile_steps:
            return profile.steps, profile.guidance
        return workload.steps, workload.guidance


def all_variants() -> list[Variant]:
    from engine.illustrate import SpeedOptions
    from engine.openvino_unet import openvino_installed

    default = SpeedOptions()
    return [
        Variant(
            "naive",
            "seed project: fp32, pipeline built per story, one call per picture, captions one "
            "by one, models loaded per request",
            naive=True,
            saver_thread=False,
        ),
        Variant(
            "engine-same-steps",
            "our engine, naive's steps and guidance: cache warm, batches, half precision on GPU",
            speed=default,
        ),
        Variant(
            "engine-default",
            "our engine as a user gets it: the profile's steps and guidance",
            profile_steps=True,
            speed=default,
        ),
        Variant(
            "engine-default:fp32",
            "pictures only, final pictures in fp32 (where the engine chose a reduced precision)",
            profile_steps=True,
            speed=default,
            whole_job=False,
            dtype="float32",
        ),
        Variant(
            "engine-default:one-at-a-time",
            "pictures only, final pictures one at a time instead of the first alone and then batches",
            profile_steps=True,
            speed=default,
            whole_job=False,
            batch_size=1,
            cpu_only=True,
        ),
        Variant(
            "engine-draft",
            "pictures only, drafts: the profile's draft steps and the tiny decoder (a CPU's default for 'fast')",
            speed=default,
            whole_job=False,
            draft=True,
        ),
        Variant(
            "engine-draft:fp32",
            "pictures only, drafts in fp32",
            speed=default,
            whole_job=False,
            draft=True,
            dtype="float32",
        ),
        Variant(
            "engine-draft:one-at-a-time",
            "pictures only, drafts one at a time instead of the first alone and then batches",
            speed=default,
            whole_job=False,
            draft=True,
            batch_size=1,
            cpu_only=True,
        ),
        Variant(
            "engine-draft:openvino",
            "pictures only, drafts with the UNet run by OpenVINO (optional: pip install openvino)",
            speed=replace(default, runtime="openvino"),
            whole_job=False,
            draft=True,
            cpu_only=True,
            opt_in=not openvino_installed(),  # in the default set where it is installed
        ),
        Variant(
            "engine-finish",
            "finishing every draft from its settings: its latent drawn again, then the full decoder",
            speed=default,
            whole_job=False,
            finish="decode",
        ),
        Variant(
            "engine-finish:refine",
            "finishing every draft image-to-image from its latent (half the noise back, the profile's steps)",
            speed=default,
            whole_job=False,
            finish="refine",
        ),
        Variant(
            "engine-default:no-channels-last",
            "pictures only, channels_last off",
            profile_steps=True,
            speed=replace(default, channels_last=False),
            own_pipeline=True,
            whole_job=False,
        ),
        Variant(
            "engine-default:no-sdpa",
            "pictures only, the plain attention processor instead of SDPA",
            profile_steps=True,
            speed=replace(default, sdpa=False),
            whole_job=False,
        ),
        Variant(
            "engine-default:preview",
            "pictures only, decoded by the tiny preview autoencoder",
            profile_steps=True,
            speed=replace(default, preview=True),
            whole_job=False,
        ),
        Variant(
            "engine-default:png-on-draw-thread",
            "pictures only, PNG encoding and saving on the drawing thread between batches",
            profile_steps=True,
            speed=default,
            whole_job=False,
            saver_thread=False,
        ),
        Variant(
            "engine-default:compile",
            "pictures only, torch.compile'd UNet with fixed batches (slow warm-up)",
            profile_steps=True,
            speed=replace(default, compile=True, fixed_batch=True),
            own_pipeline=True,
            whole_job=False,
            gpu_only=True,
            opt_in=True,
        ),
    ]


def choose_variants(names: str | None, is_gpu: bool) -> list[Variant]:
    variants = all_variants()
    if not names:
        return [
            v
            for v in variants
            # A CPU run skips the variants that load a second copy of the pipeline unless they are named.
            if not v.opt_in and (is_gpu or not (v.gpu_only or v.own_pipeline)) and not (is_gpu and v.cpu_only)
        ]
    by_name = {v.name: v for v in variants}
    chosen = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        if name not in by_name:
            raise InputError(f"Unknown benchmark variant '{name}': choose from {', '.join(by_name)}.")
        if by_name[name].gpu_only and not is_gpu:
            raise InputError(f"The variant '{name}' only means something on a GPU, and this run is on the CPU.")
        if by_name[name].cpu_only and is_gpu:
            raise InputError(f"The variant '{name}' only means something on a CPU, and this run is on a GPU.")
        chosen.append(by_name[name])
    return chosen


def resolve_workload(args) -> Workload:
    arch = args.arch
    quick = bool(args.quick)
    defaults = {
        "images": 2 if quick else 12,
        "stories": 2,
        "size": 64 if arch == "tiny" else 512,
        "steps": 2 if quick else (20 if arch == "tiny" else 50),
        "guidance": 7.5,
        "captions": 1 if quick else 4,
        "story_words": 10 if quick else 35,
    }
    values = {k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in defaults.items()}
    values["captions"] = min(values["captions"], values["images"])
    if not 1 <= values["images"] <= MAX_IMAGES:
        raise InputError(f"--images must be between 1 and {MAX_IMAGES}.")
    if values["size"] < 64 or values["size"] % 8:
        raise InputError("--size must be a multiple of 8, at least 64.")
    if not 1 <= values["steps"] <= 150:
        raise InputError("--steps must be between 1 and 150.")
    if not 0 <= values["captions"] <= len(STORY_CAPTIONS):
        raise InputError(f"--captions must be between 0 and {len(STORY_CAPTIONS)}.")
    if not 10 <= values["story_words"] <= 250:
        raise InputError("--story-words must be between 10 and 250.")
    return Workload(arch=arch, **values)
