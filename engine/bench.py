"""`python -m engine bench`: time one fixed storybook job, the seed project's way against ours, stage by stage.

The job: pictures for two stories of six segments (512x512 on the full architecture, 64x64 on tiny),
captions for four of those pictures, and one story of about 300 tokens written from four captions.

Variants run in one process, interleaved round by round after a warm-up, on the same model files:

* naive: what the seed project did. fp32; each story request builds its pipeline from disk again
  (reported as its own 'load' line) and calls it once per picture; captions one picture at a time and
  the storyteller loaded per request, all in fp32.
* engine-same-steps: our Illustrator, Captioner and Storyteller as the studio runs them (shared model
  cache, warm; batching; half precision on a GPU), with the naive run's steps and guidance: the
  systems speed-up with nothing changed about the pictures.
* engine-default: the same, with the profile's steps and guidance, as a user gets it.
* engine-default:<flag>: the pictures only, with one SpeedOptions flag changed, to show what it buys.

Stages are timed by wrapping the pipeline's own parts (encode_prompt, vae.decode, the image
post-processing, the preview decoder) for the length of a run, with the device synchronised around each
timer; denoising is what is left of the pipeline call (UNet steps, scheduler, latent set-up).

The full architecture is the `fast` profile's models at full size (SD-Turbo, BLIP base, Qwen2.5-0.5B)
built from the published configs in engine/configs/ with random weights, saved once as safetensors
and loaded through the same from_pretrained paths as real downloads: the compute equals the real
models'. Their tokenizers are the tinykit's, padded to the models' vocabulary sizes (CLIP prompts are
padded to 77 tokens as always), since the cost is in the models, not the tokenizers. Random weights
write random tokens, so every caption and story passage is held to its full token budget (end-of-text
is suppressed) and each variant does the same work.

FLOPs: the diffusion models are counted with torch's FlopCounterMode on meta-device copies (no compute),
the captioner and storyteller while the engine-default warm-up runs; the job's FLOPs over the measured
matmul rate of this device (measured in the same run) is the FLOP floor of the job.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import gc
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError

if TYPE_CHECKING:  # torch is imported where it is used: `python -m engine segment` never needs it
    import torch

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
FULL_KIT_VERSION = "1"
SEED_PROJECT = {
    "seconds_per_image": (15, 20),
    "seconds_per_three_segment_story": (45, 60),
    "where": "a data-centre GPU, fp32, pipeline built per request",
}

# The published configs of the `fast` profile's models, one file per part.
FULL_CONFIGS = {
    "unet": "sd_turbo_unet.json",
    "vae": "sd_turbo_vae.json",
    "text_encoder": "sd_turbo_text_encoder.json",
    "scheduler": "sd_turbo_scheduler.json",
    "preview_decoder": "taesd.json",
    "captioner": "blip_image_captioning_base.json",
    "storyteller": "qwen2_5_0_5b_instruct.json",
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


# --- full-size models from their published configs --------------------------------------------------


def load_config(part: str) -> dict:
    """A published config from engine/configs, without our '_source' note."""
    if part not in FULL_CONFIGS:
        raise InputError(f"Unknown model part '{part}': choose from {', '.join(FULL_CONFIGS)}.")
    data = json.loads((CONFIG_DIR / FULL_CONFIGS[part]).read_text(encoding="utf-8"))
    data.pop("_source", None)
    return data


def build_full_model(part: str, device: str | torch.device | None = None):
    """One full-size model with random weights; on device 'meta' it costs nothing (for counting)."""
    import torch

    cfg = load_config(part)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        if part == "unet":
            from diffusers import UNet2DConditionModel

            return UNet2DConditionModel.from_config(cfg)
        if part == "vae":
            from diffusers import AutoencoderKL

            return AutoencoderKL.from_config(cfg)
        if part == "preview_decoder":
            from diffusers import AutoencoderTiny

            return AutoencoderTiny.from_config(cfg)
        if part == "text_encoder":
            from transformers import CLIPTextConfig, CLIPTextModel

            return CLIPTextModel(CLIPTextConfig(**cfg))
        if part == "captioner":
            from transformers import BlipConfig, BlipForConditionalGeneration

            return BlipForConditionalGeneration(BlipConfig(**cfg))
        if part == "storyteller":
            from transformers import Qwen2Config, Qwen2ForCausalLM

            return Qwen2ForCausalLM(Qwen2Config(**cfg))
    raise InputError(f"'{part}' is a config, not a model.")


def parameter_count(model: torch.nn.Module, *, count_tied_twice: bool = False) -> int:
    """Parameters of a model; count_tied_twice counts shared tensors once per name, as checkpoints store them."""
    if count_tied_twice:
        return sum(t.numel() for name, t in model.state_dict().items())
    return sum(p.numel() for p in model.parameters())


def _bert_vocab(size: int) -> list[str]:
    """A BERT-style vocabulary at BLIP's size: bert-base's special ids, then words, then fillers."""
    from engine.tinykit import _wordpiece_vocab

    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [w for w in _wordpiece_vocab() if not w.startswith("[")]
    vocab += words
    vocab += [f"w{i}" for i in range(size - 2 - len(vocab))]
    return vocab + ["[DEC]", "[ENC]"]


def _qwen_tokenizer(vocab_size: int, model_config: dict):
    """A word-level tokenizer with one entry per row of Qwen's embedding: every id decodes to a word."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from engine.tinykit import _CHAT_TEMPLATE, _WORDS

    specials = {
        model_config["bos_token_id"]: "<|endoftext|>",
        model_config["bos_token_id"] + 1: "<|im_start|>",
        model_config["eos_token_id"]: "<|im_end|>",
    }
    words = ["[UNK]"] + sorted(set(_WORDS))
    vocab, filler = {}, 0
    for i in range(vocab_size):
        if i in specials:
            token = specials[i]
        elif i < len(words):
            token = words[i]
        else:
            token, filler = f"w{filler}", filler + 1
        vocab[token] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


def _build_full_role(role: str, folder: Path, tiny: dict[str, Path]) -> None:
    import torch

    torch.manual_seed(0)
    if role == "illustrator":
        from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
        from transformers import CLIPTokenizer

        tokenizer = CLIPTokenizer.from_pretrained(tiny["illustrator"], subfolder="tokenizer")  # pads to 77
        pipe = StableDiffusionPipeline(
            vae=build_full_model("vae"),
            text_encoder=build_full_model("text_encoder"),
            tokenizer=tokenizer,
            unet=build_full_model("unet"),
            scheduler=EulerDiscreteScheduler.from_config(load_config("scheduler")),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(folder, safe_serialization=True)
    elif role == "preview_decoder":
        build_full_model("preview_decoder").save_pretrained(folder, safe_serialization=True)
    elif role == "captioner":
        from transformers import BertTokenizer, BlipImageProcessor, BlipProcessor

        model = build_full_model("captioner")
        text_cfg = model.config.text_config
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "vocab.txt").write_text("\n".join(_bert_vocab(text_cfg.vocab_size)) + "\n", encoding="utf-8")
        tokenizer = BertTokenizer(
            str(folder / "vocab.txt"),
            do_lower_case=True,
            model_max_length=512,
            bos_token="[DEC]",
            pad_token="[PAD]",
            sep_token="[SEP]",
            cls_token="[CLS]",
        )
        side = model.config.vision_config.image_size
        processor = BlipProcessor(
            image_processor=BlipImageProcessor(size={"height": side, "width": side}), tokenizer=tokenizer
        )
        model.save_pretrained(folder, safe_serialization=True)
        processor.save_pretrained(folder)
    elif role == "storyteller":
        model = build_full_model("storyteller")
        cfg = load_config("storyteller")
        tokenizer = _qwen_tokenizer(cfg["vocab_size"], cfg)
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
    else:
        raise InputError(f"Unknown role '{role}'.")


def _configs_stamp() -> str:
    digest = hashlib.sha256(FULL_KIT_VERSION.encode())
    for name in sorted(FULL_CONFIGS.values()):
        digest.update((CONFIG_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def ensure_full_models(
    folder: str | Path | None = None, log: Callable[[str], None] = lambda s: None
) -> dict[str, Path]:
    """The full-size random-weight models, built once per folder (about 8 GB of fp32 safetensors) and reused."""
    import fcntl

    from core.paths import data_home
    from engine.tinykit import ensure_tiny_models

    folder = Path(folder) if folder else data_home() / "models" / "bench-full"
    folder.mkdir(parents=True, exist_ok=True)
    roles = ("illustrator", "preview_decoder", "captioner", "storyteller")
    paths = {role: folder / role for role in roles}
    marker, stamp = folder / "READY", _configs_stamp()
    if marker.exists() and marker.read_text().strip() == stamp:
        return paths
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text().strip() == stamp:
            return paths
        tiny = ensure_tiny_models()
        for role in roles:
            started = time.perf_counter()
            staging = Path(tempfile.mkdtemp(prefix=f".{role}-", dir=folder))
            try:
                _build_full_role(role, staging, tiny)
                staging.chmod(0o755)
                shutil.rmtree(paths[role], ignore_errors=True)
                os.replace(staging, paths[role])
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            log(f"  built the full-size {role} in {time.perf_counter() - started:.0f} s")
        marker.write_text(stamp)
    return paths


def bench_models(arch: str, models_dir: str | None, log: Callable[[str], None]) -> dict[str, Path]:
    if arch == "tiny":
        from engine.tinykit import ensure_tiny_models

        tiny = ensure_tiny_models(models_dir) if models_dir else ensure_tiny_models()
        return {role: tiny[role] for role in ("illustrator", "preview_decoder", "captioner", "storyteller")}
    return ensure_full_models(models_dir, log)


# --- FLOPs -------------------------------------------------------------------------------------------


def diffusion_flops(illustrator_folder: Path, preview_folder: Path | None, size: int) -> dict[str, float]:
    """FLOPs of one prompt encoding, one UNet evaluation and one decode for a single picture, counted on meta."""
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(illustrator_folder)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
        preview = (
            AutoencoderTiny.from_config(AutoencoderTiny.load_config(preview_folder))
            if preview_folder is not None
            else None
        )
    tokens = 77
    tokenizer_cfg = folder / "tokenizer" / "tokenizer_config.json"
    if tokenizer_cfg.exists():
        tokens = int(json.loads(tokenizer_cfg.read_text()).get("model_max_length", 77))
    return count_diffusion_flops(unet, vae, text, preview, size, tokens)


def count_diffusion_flops(unet, vae, text, preview, size: int, tokens: int = 77) -> dict[str, float]:
    """FlopCounterMode over meta-device models: matmuls, convolutions and attention, no compute."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    side = size // 2 ** (len(vae.config.block_out_channels) - 1)

    def count(fn) -> float:
        with torch.device("meta"), FlopCounterMode(display=False) as counter, torch.no_grad():
            fn()
        return float(counter.get_total_flops())

    latents = lambda: torch.empty(1, unet.config.in_channels, side, side)  # noqa: E731
    context = lambda: torch.empty(1, tokens, unet.config.cross_attention_dim)  # noqa: E731
    out = {
        "text_encoder": count(lambda: text(torch.zeros(1, tokens, dtype=torch.long))),
        "unet": count(lambda: unet(latents(), torch.tensor([999]), encoder_hidden_states=context())),
        "vae_decode": count(lambda: vae.decode(latents())),
    }
    if preview is not None:
        out["preview_decode"] = count(lambda: preview.decode(latents()))
    return out


def picture_flops(per: dict[str, float], images: int, steps: int, guidance: float, preview: bool) -> dict[str, float]:
    guided = 2 if guidance > 1 else 1  # classifier-free guidance runs the UNet (and the encoder) twice
    decode = per["preview_decode"] if preview and "preview_decode" in per else per["vae_decode"]
    return {
        "text_encoding": images * guided * per["text_encoder"],
        "denoising": images * steps * guided * per["unet"],
        "decoding": images * decode,
    }


# --- measuring ---------------------------------------------------------------------------------------


def _sync_for(device: str) -> Callable[[], None]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    if device == "mps":
        return torch.mps.synchronize
    return lambda: None


class StageClock:
    """Seconds per stage for one run; the device is synchronised at both ends of every timer."""

    def __init__(self, sync: Callable[[], None]):
        self.sync = sync
        self.seconds: dict[str, float] = {}
        self._depth = 0

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.sync()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def wrap(self, name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed


@contextlib.contextmanager
def patched(targets: list[tuple[Any, str, Callable[[Callable], Callable]]]) -> Iterator[None]:
    """Replace obj.attr with make(obj.attr) on the instance for the block, then let the class's show again."""
    done = []
    try:
        for obj, attr, make in targets:
            setattr(obj, attr, make(getattr(obj, attr)))
            done.append((obj, attr))
        yield
    finally:
        for obj, attr in reversed(done):
            with contextlib.suppress(AttributeError):
                delattr(obj, attr)


def stage_hooks(pipe, clock: StageClock, preview_decoder=None):
    targets = [
        (pipe, "encode_prompt", functools.partial(clock.wrap, "text_encoding")),
        (pipe.vae, "decode", functools.partial(clock.wrap, "decoding")),
        (pipe.image_processor, "postprocess", functools.partial(clock.wrap, "decoding")),
    ]
    if preview_decoder is not None:
        targets.append((preview_decoder, "decode", functools.partial(clock.wrap, "decoding")))
    return patched(targets)


class Generation:
    """Holds every generate() call of a model to its full token budget, and counts the tokens written.

    Random weights may write end-of-text at any step, and fp32 and bf16 would stop at different ones;
    with min_new_tokens = max_new_tokens every variant writes exactly the same number of tokens.
    """

    def __init__(self):
        self.tokens = 0
        self.calls = 0

    def hook(self, model):
        import torch

        def make(generate):
            @functools.wraps(generate)
            def fixed(*args, **kwargs):
                if kwargs.get("max_new_tokens"):
                    kwargs["min_new_tokens"] = kwargs["max_new_tokens"]
                out = generate(*args, **kwargs)
                ids = out if isinstance(out, torch.Tensor) else out.sequences
                given = kwargs.get("input_ids")
                start = given.shape[1] if isinstance(given, torch.Tensor) else 1  # BLIP starts from [DEC]
                self.tokens += int(ids.shape[0] * max(0, ids.shape[1] - start))
                self.calls += 1
                return out

            return fixed

        return patched([(model, "generate", make)])


class HostMemory:
    """The largest resident set size of this process while the block runs, sampled every 10 ms."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss() -> int:
        try:
            import psutil

            return int(psutil.Process().memory_info().rss)
        except ImportError:
            pass
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return max_rss_bytes()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> HostMemory:
        self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss())


def max_rss_bytes() -> int:
    """The process's lifetime peak resident set (Linux reports kilobytes, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@contextlib.contextmanager
def private_cache() -> Iterator[Any]:
    """A fresh, empty model cache for the block: what a process without our cache would do per request."""
    import torch

    import engine.cache as cache_module

    with cache_module._cache_lock:
        previous = cache_module._cache
        cache_module._cache = cache_module.ModelCache(budget_bytes=2**62)
    try:
        yield cache_module._cache
    finally:
        with cache_module._cache_lock:
            fresh, cache_module._cache = cache_module._cache, previous
        fresh.clear()
        del fresh
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def save_durably(folder: Path, name: str, data: bytes) -> None:
    """As the studio saves a picture: a temporary name, flush, fsync, then rename into place."""
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)


def measure_roofline(device: str, dtypes: list[torch.dtype], sync: Callable[[], None], *, small: bool = False) -> dict:
    """The rates of the job's own kernels per number format, and the memory-copy bandwidth, measured now.

    Two kernels, in each number format the variants run in: a large matmul (attention and linear layers)
    and the UNet's commonest convolution (320 channels, 3x3, 64x64 latents at 512 px, channels-last as
    the engine runs it). The roofline of a number format is the faster of the two: what this device can
    reach on the job's work. small: smaller shapes, for smoke runs on tiny models.
    """
    import torch

    gpu = device.startswith("cuda")
    n = 8192 if gpu else (1024 if small else 4096)
    reps = 50 if gpu else (4 if small else 2)
    out: dict[str, Any] = {"matmul": {}, "conv": {}, "best": {}}
    for dtype in dict.fromkeys(dtypes):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        c = torch.empty(n, n, device=device, dtype=dtype)
        for _ in range(2):
            torch.mm(a, b, out=c)
        sync()
        started = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=c)
        sync()
        seconds = time.perf_counter() - started
        out["matmul"][str(dtype).removeprefix("torch.")] = {
            "flops_per_second": 2 * n**3 * reps / seconds,
            "shape": f"{n}x{n}x{n}",
            "repeats": reps,
        }
        del a, b, c
    side, channels, batch = (32, 320, 1) if small else (64, 320, 2 if gpu else 1)
    conv_reps = 20 if gpu else 3
    for dtype in dict.fromkeys(dtypes):
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, device=device, dtype=dtype)
        conv = conv.to(memory_format=torch.channels_last)
        x = torch.randn(batch, channels, side, side, device=device, dtype=dtype).contiguous(
            memory_format=torch.channels_last
        )
        with torch.inference_mode():
            for _ in range(2):
                conv(x)
            sync()
            started = time.perf_counter()
            for _ in range(conv_reps):
                conv(x)
            sync()
        seconds = time.perf_counter() - started
        key = str(dtype).removeprefix("torch.")
        out["conv"][key] = {
            "flops_per_second": 2 * batch * channels * channels * 9 * side * side * conv_reps / seconds,
            "shape": f"{batch}x{channels}x{side}x{side}, 3x3",
            "repeats": conv_reps,
        }
        del conv, x
    for key in out["matmul"]:
        out["best"][key] = max(out["matmul"][key]["flops_per_second"], out["conv"][key]["flops_per_second"])
    nbytes = (2 * 2**30) if gpu else (256 * 2**20)
    src = torch.empty(nbytes // 4, device=device, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync()
    started = time.perf_counter()
    copies = 10 if gpu else 5
    for _ in range(copies):
        dst.copy_(src)
    sync()
    seconds = time.perf_counter() - started
    out["copy"] = {
        "bytes_per_second": 2 * nbytes * copies / seconds,
        "bytes": nbytes,
        "note": "bytes read plus bytes written",
    }
    del src, dst
    return out


def best_roofline(samples: list[dict]) -> dict:
    """The highest rate seen for each measurement, with every sample kept for the record."""
    best = copy.deepcopy(samples[0])
    kinds = [(kind, name) for kind in ("matmul", "conv") for name in best.get(kind, {})] + [("copy", None)]
    for kind, key in kinds:
        entries = [s[kind][key] if key else s[kind] for s in samples]
        field_name = "bytes_per_second" if kind == "copy" else "flops_per_second"
        target = best[kind][key] if key else best[kind]
        values = [e[field_name] for e in entries]
        target[field_name] = max(values)
        target["samples"] = values
    for key in best.get("best", {}):
        best["best"][key] = max(best["matmul"][key]["flops_per_second"], best["conv"][key]["flops_per_second"])
    return best


# --- one run of one variant --------------------------------------------------------------------------


@dataclass
class RunResult:
    stages: dict[str, float]
    pictures_seconds: float
    end_to_end: float
    first_image: float | None
    images: int
    caption_tokens: int = 0
    story_tokens: int = 0
    story_calls: int = 0
    peak_gpu_bytes: int | None = None
    peak_gpu_above_start: int | None = None
    peak_host_bytes: int = 0
    flops_counted: dict[str, float] = field(default_factory=dict)


def draft_settings(illustrator, request) -> dict:
    """What a draft of this request records, without drawing it: the engine's own settings_for."""
    from engine.illustrate import validate

    return illustrator.settings_for(validate(replace(request, draft=True), illustrator.defaults))


class Bench:
    def __init__(
        self,
        workload: Workload,
        models: dict[str, Path],
        choice,
        variants: list[Variant],
        out_dir: Path,
        log: Callable[[str], None],
    ):
        import torch

        from engine.device import DeviceChoice
        from engine.profiles import PROFILES

        self.workload = workload
        self.models = models
        self.choice = choice
        self.naive_choice = DeviceChoice(choice.device, torch.float32)
        self.variants = variants
        self.out_dir = out_dir
        self.log = log
        self.sync = _sync_for(choice.device)
        base = PROFILES["fast" if workload.arch == "full" else "tiny"]
        self.profile = replace(
            base,
            name=f"bench-{workload.arch}",
            models={role: str(path) for role, path in models.items()},
            width=workload.size,
            height=workload.size,
        )
        self._run_number = 0
        self._own_illustrators: dict[str, Any] = {}

    def choice_for(self, variant: Variant):
        """The device and number format a variant's engine runs in."""
        from engine.device import DeviceChoice, pick_device

        if variant.naive:
            return self.naive_choice
        if variant.dtype is None:
            return self.choice
        return DeviceChoice(self.choice.device, pick_device(self.choice.device, variant.dtype).dtype)

    def batch_size_for(self, variant: Variant) -> int:
        if variant.naive:
            return 1
        if variant.batch_size:
            return variant.batch_size
        from engine.illustrate import Defaults

        return Defaults.from_profile(self.profile, self.choice_for(variant)).batch_size

    # -- the pieces of the job --

    @staticmethod
    def _saver(clock: StageClock, folder: Path, started: float, first: list, images: list) -> Callable:
        """What the studio does with each finished picture: PNG-encode it and save it durably."""
        from engine.imageio import to_png_bytes

        def on_image(key, image) -> None:
            with clock.stage("png_encoding"):
                data = to_png_bytes(image)
            with clock.stage("saving"):
                save_durably(folder, f"picture-{key:03d}.png", data)
            images.append((key, image))
            if not first:
                first.append(time.perf_counter() - started)

        return on_image

    def _naive_pictures(self, clock: StageClock, folder: Path, started: float, first: list) -> list:
        import torch
        from diffusers import DiffusionPipeline

        images: list = []
        on_image = self._saver(clock, folder, started, first, images)
        w = self.workload
        for story in picture_requests(w, steps=w.steps, guidance=w.guidance):
            with clock.stage("load"):
                pipe = DiffusionPipeline.from_pretrained(
                    str(self.models["illustrator"]), dtype=torch.float32, use_safetensors=True, local_files_only=True
                )
                pipe = pipe.to(self.naive_choice.device)
                pipe.set_progress_bar_config(disable=True)
            with stage_hooks(pipe, clock), clock.stage("_pictures"):
                for r in story:
                    with torch.inference_mode():
                        image = pipe(
                            prompt=r.prompt,
                            negative_prompt=r.negative_prompt if r.guidance > 1 else None,
                            num_inference_steps=r.steps,
                            guidance_scale=r.guidance,
                            width=r.width,
                            height=r.height,
                            generator=torch.Generator("cpu").manual_seed(r.seed),
                        ).images[0]
                    on_image(r.key, image)
            del pipe
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        return [image for _, image in images]

    def _illustrator(self, variant: Variant, stack: contextlib.ExitStack):
        from engine.cache import get_cache
        from engine.illustrate import Defaults, Illustrator, _load_pipeline, open_illustrator

        choice = self.choice_for(variant)
        drafts = variant.draft or bool(variant.finish)
        if not variant.own_pipeline:
            return stack.enter_context(open_illustrator(self.profile, choice, speed=variant.speed, draft=drafts))
        # A copy of the pipeline whose memory layout or compiled UNet must not leak into the shared one.
        # Its Illustrator is made once: re-applying the options every run could recompile the graph.
        ref = self.profile.model("illustrator")
        key = ("illustrator", ref, choice.device, str(choice.dtype), "bench", variant.name)
        pipe = stack.enter_context(get_cache().use(key, lambda: _load_pipeline(ref, choice)))
        illustrator = self._own_illustrators.get(variant.name)
        if illustrator is None or illustrator.pipe is not pipe:
            illustrator = Illustrator(pipe, ref, choice, Defaults.from_profile(self.profile, choice), variant.speed)
            self._own_illustrators[variant.name] = illustrator
        return illustrator

    def _engine_pictures(self, variant: Variant, clock: StageClock, folder: Path, started: float, first: list) -> list:
        images: list = []
        w = self.workload
        steps, guidance = (
            (None, None) if variant.profile_steps or variant.draft or variant.finish else (w.steps, w.guidance)
        )
        # The studio's worker hands each picture to a saver thread and draws on; the saver's own clock
        # never synchronises the device, so its stages overlap the drawing (their sum is not wall time).
        saver_clock = StageClock(lambda: None) if variant.saver_thread else clock
        save = self._saver(saver_clock, folder, started, first, images)
        with contextlib.ExitStack() as stack:
            saver = (
                stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="bench-saver"))
                if variant.saver_thread
                else None
            )
            saves: list = []
            with clock.stage("load"):
                illustrator = self._illustrator(variant, stack)
            decoder = illustrator.preview_decoder if illustrator.speed.preview or variant.draft else None

            def on_image(result) -> None:
                if saver is None:
                    save(result.key, result.image)
                else:
                    saves.append(saver.submit(save, result.key, result.image))

            with stage_hooks(illustrator.pipe, clock, decoder), clock.stage("_pictures"):
                # Every story of the job in one call: batches fill across stories, one generator per picture.
                requests = [
                    replace(r, draft=variant.draft)
                    for story in picture_requests(w, steps=steps, guidance=guidance)
                    for r in story
                ]
                if variant.finish:
                    illustrator.finish(
                        [(r.key, draft_settings(illustrator, r)) for r in requests],
                        method=variant.finish,
                        on_image=on_image,
                    )
                else:
                    # No batch size unless the variant sets one: the engine's own default (on a CPU the
                    # first picture alone, then batches), as the studio gets it.
                    illustrator.illustrate(requests, on_image=on_image, batch_size=variant.batch_size)
            with clock.stage("_saver_tail"):  # the last pictures' saves, after the drawing ended
                for future in saves:
                    future.result()
        for stage in ("png_encoding", "saving"):
            if variant.saver_thread and stage in saver_clock.seconds:
                clock.seconds["_overlapped_" + stage] = saver_clock.seconds[stage]
        images.sort(key=lambda im: im[0])
        return [image for _, image in images]

    def _captions_and_story(self, naive: bool, clock: StageClock, images: list, counts: dict) -> None:
        from engine.caption import Captioner
        from engine.loading import loaded_model
        from engine.storyteller import Storyteller

        w = self.workload
        if not w.captions:
            return
        choice = self.naive_choice if naive else self.choice
        captioner = Captioner(ref=self.profile.model("captioner"), profile=self.profile, device=choice)
        teller = Storyteller(ref=self.profile.model("storyteller"), profile=self.profile, device=choice)
        with contextlib.ExitStack() as stack:
            with clock.stage("load"):
                # Engine: cache hits once warm. Naive (in a private cache): loaded from disk for this request.
                cap = stack.enter_context(loaded_model("captioner", captioner.ref, choice, captioner._load))
                story = stack.enter_context(loaded_model("storyteller", teller.ref, choice, teller._load))
            caption_tokens, story_tokens = Generation(), Generation()
            with caption_tokens.hook(cap.model), clock.stage("captioning"):
                captioner.caption(images[: w.captions], batch_size=1 if naive else 8)
            with story_tokens.hook(story.model), clock.stage("story"):
                teller.tell(list(STORY_CAPTIONS[: w.captions]), words_per_picture=w.story_words, seed=0)
        counts.update(
            caption_tokens=caption_tokens.tokens, story_tokens=story_tokens.tokens, story_calls=story_tokens.calls
        )

    def run(self, variant: Variant, *, count_flops: bool = False) -> RunResult:
        """One run of the variant's job; stages in seconds."""
        import torch

        self._run_number += 1
        folder = self.out_dir / f"run-{self._run_number:03d}-{variant.name.replace(':', '-')}"
        folder.mkdir(parents=True)
        clock = StageClock(self.sync)
        first: list[float] = []
        counts: dict[str, int] = {}
        flops: dict[str, float] = {}
        gpu = self.choice.device.startswith("cuda")
        if gpu:
            torch.cuda.reset_peak_memory_stats()
            gpu_start = torch.cuda.memory_allocated()
        with HostMemory() as host:
            self.sync()
            started = time.perf_counter()
            if variant.naive:
                with private_cache():
                    images = self._naive_pictures(clock, folder, started, first)
                    if variant.whole_job:
                        self._captions_and_story(True, clock, images, counts)
            else:
                images = self._engine_pictures(variant, clock, folder, started, first)
                if variant.whole_job:
                    if count_flops:
                        from torch.utils.flop_counter import FlopCounterMode

                        with FlopCounterMode(display=False) as counter:
                            self._captions_and_story(False, clock, images, counts)
                        flops["captioning_and_story"] = float(counter.get_total_flops())
                    else:
                        self._captions_and_story(False, clock, images, counts)
            self.sync()
            total = time.perf_counter() - started
        seconds = dict(clock.seconds)
        pictures_call = seconds.pop("_pictures", 0.0)
        tail = seconds.pop("_saver_tail", 0.0)
        inside = sum(seconds.get(s, 0.0) for s in ("text_encoding", "decoding", "png_encoding", "saving"))
        seconds["denoising"] = max(0.0, pictures_call - inside)
        overlapped = {
            s: seconds.pop("_overlapped_" + s) for s in ("png_encoding", "saving") if "_overlapped_" + s in seconds
        }
        seconds.update(overlapped)
        # Wall time of the pictures: loading, the drawing (with whatever ran inside it) and the saver's tail.
        pictures_seconds = seconds.get("load", 0.0) + pictures_call + tail
        shutil.rmtree(folder, ignore_errors=True)
        result = RunResult(
            stages=seconds,
            pictures_seconds=pictures_seconds,
            end_to_end=total,
            first_image=first[0] if first else None,
            images=len(images),
            peak_host_bytes=host.peak,
            flops_counted=flops,
            **counts,
        )
        if gpu:
            result.peak_gpu_bytes = int(torch.cuda.max_memory_allocated())
            result.peak_gpu_above_start = int(torch.cuda.max_memory_allocated() - gpu_start)
        return result


# --- statistics and the report -----------------------------------------------------------------------


def summarise(values: list[float]) -> dict:
    values = [float(v) for v in values]
    if not values:
        return {}
    q1, q3 = statistics.quantiles(values, n=4, method="inclusive")[0::2] if len(values) > 1 else (values[0], values[0])
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "q1": q1,
        "q3": q3,
        "n": len(values),
        "samples": values,
    }


def _fmt_seconds(stat: dict | None) -> str:
    if not stat:
        return "-"
    m = stat["median"]
    digits = 3 if m < 1 else 2 if m < 10 else 1
    if stat["n"] == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{stat['min']:.{digits}f}-{stat['max']:.{digits}f}]"


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _fmt_rate(flops_per_second: float) -> str:
    return (
        f"{flops_per_second / 1e12:.2f} TFLOP/s"
        if flops_per_second >= 1e11
        else f"{flops_per_second / 1e9:.1f} GFLOP/s"
    )


def render_table(report: dict) -> str:
    variants = report["variants"]
    names = list(variants)
    rows: list[list[str]] = [["median s [min-max]"] + names]

    def row(label: str, cell: Callable[[dict], str]) -> None:
        rows.append([label] + [cell(variants[n]) for n in names])

    def optional(key: str, fmt: Callable[[Any], str]) -> Callable[[dict], str]:
        return lambda v: fmt(v[key]) if v.get(key) else "-"

    labels = {**STAGE_LABELS, "pictures": "pictures (wall time)", "end_to_end": "end to end"}

    def mode(v: dict) -> str:
        st = v["settings"]
        kind = f"finish:{st['finish']}" if st.get("finish") else "draft" if st.get("draft") else "final"
        dtype = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(st["dtype"], st["dtype"])
        batch = f"b1+{st['batch_size']}" if st.get("first_alone") else f"b{st['batch_size']}"
        return f"{kind} {dtype} {st['steps']}st {batch}"

    row("mode, format, steps, batch", mode)
    for stage in STAGES + ("pictures", "end_to_end"):
        row(labels[stage], lambda v, stage=stage: _fmt_seconds(v["stages"].get(stage)))
    row("pictures per second", lambda v: f"{v['images_per_second']['median']:.3g}")
    row("seconds per picture", lambda v: _fmt_seconds(v.get("seconds_per_picture")))
    row("first picture after (s)", lambda v: _fmt_seconds(v.get("first_image_seconds")))
    row("story tokens per second", optional("story_tokens_per_second", lambda x: f"{x:.1f}"))
    row("peak GPU memory", lambda v: _fmt_bytes(v.get("peak_gpu_bytes")))
    row("peak host memory (RSS)", lambda v: _fmt_bytes(v.get("peak_host_bytes")))
    row("job FLOPs (counted)", lambda v: f"{v['flops']['total'] / 1e12:.3g} T")
    row("achieved, end to end", optional("achieved_flops_per_second", _fmt_rate))
    row("achieved, denoising", optional("denoising_flops_per_second", _fmt_rate))
    row("% of roofline, its format (e2e)", optional("roofline_fraction", lambda x: f"{100 * x:.1f}%"))
    row("FLOP floor (s)", optional("flop_floor_seconds", lambda x: f"{x:.3g}"))

    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)) for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    meta, roof = report["meta"], report["roofline"]
    load = meta.get("load_average") or {}
    head = [
        f"Storybook bench, arch {meta['arch']} on {meta['device']} ({meta['date']})",
        f"workload: {meta['workload_text']}",
        f"{meta['repeats']} timed repeat(s) after {meta['warmup']} warm-up round(s), variants interleaved"
        + (f"; load average {load['start']} at the start, {load['end']} at the end" if load.get("start") else ""),
    ]
    tail = [
        "roofline (the job's kernels, best of each): matmul "
        + ", ".join(f"{k} {_fmt_rate(v['flops_per_second'])} ({v['shape']})" for k, v in roof["matmul"].items())
        + "; convolution "
        + ", ".join(f"{k} {_fmt_rate(v['flops_per_second'])} ({v['shape']})" for k, v in roof.get("conv", {}).items())
        + f"; memory copy {roof['copy']['bytes_per_second'] / 1e9:.1f} GB/s"
    ]
    if meta.get("cpu_speed"):
        tail.append(f"CPU number format race at start-up: {meta['cpu_speed']['text']}")
    cold = report.get("cold_start") or {}
    if cold.get("first_image_seconds") is not None:
        line = (
            f"cold start (engine, models loaded from disk into an empty cache): first picture after "
            f"{cold['first_image_seconds']:.2f} s"
        )
        if cold.get("since_process_start_seconds") is not None:
            line += f"; {cold['since_process_start_seconds']:.1f} s after the process started"
            if meta["models_prepare_seconds"] >= 1:
                line += f" (of which {meta['models_prepare_seconds']:.1f} s building the benchmark models)"
        if cold.get("peak_host_bytes"):
            line += (
                f"; {cold.get('variant')} in {cold.get('dtype')}, loading {cold.get('load_seconds') or 0:.1f} s, "
                f"peak host memory {_fmt_bytes(cold['peak_host_bytes'])}"
            )
        tail.append(line)
    eq = report.get("equivalence") or {}
    if eq.get("skipped"):
        tail.append(f"equivalence: skipped, {eq['skipped']}")
    for name, m in (eq.get("modes") or {}).items():
        psnr = "identical" if m["psnr_db_min"] is None else f"PSNR {m['psnr_db_min']:.1f} dB (lowest)"
        tail.append(
            f"equivalence, {name}: {eq['dtype']} vs float32 over {eq['pictures']} picture(s), same seeds: {psnr}, "
            f"mean abs diff {m['mean_abs_diff_max']:.2f}/255 (highest), max {m['max_abs_diff']:.0f}; "
            + ("within" if m["within_thresholds"] else "OUTSIDE")
            + f" the thresholds (PSNR >= {eq['thresholds']['psnr_db']:g} dB, mean abs diff <= "
            f"{eq['thresholds']['mean_abs_diff']:g})"
        )
    tail.append(
        "stages: denoising is the pipeline call minus the timed stages inside it; 'load' is the "
        "naive per-request build, or the warm-cache lookup for the engine"
    )
    tail.append(
        "engine variants encode and save PNGs on a saver thread, as the studio does: those two rows overlap "
        "the drawing and are not part of its wall time (png-on-draw-thread shows them inline)"
    )
    return "\n".join(head + [""] + lines + [""] + tail)


# --- the command -------------------------------------------------------------------------------------


def _process_start_wallclock() -> float | None:
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001 - psutil is optional
        pass
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


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


def _quiet_libraries() -> None:
    with contextlib.suppress(Exception):
        from diffusers.utils import logging as dlog

        dlog.disable_progress_bar()
        dlog.set_verbosity_error()
    with contextlib.suppress(Exception):
        from transformers.utils import logging as tlog

        tlog.disable_progress_bar()
        tlog.set_verbosity_error()


def run_bench(args) -> dict:
    import torch

    from engine.device import pick_device

    log = (lambda s: None) if args.silent else (lambda s: print(s, file=sys.stderr, flush=True))
    workload = resolve_workload(args)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else 1
    if repeats < 1 or warmup < 0:
        raise InputError("--repeats must be at least 1 and --warmup at least 0.")
    choice = pick_device(args.device, args.dtype)
    variants = choose_variants(args.variants, choice.is_gpu)
    _quiet_libraries()
    load_start = _load_average()

    log(f"Preparing the {workload.arch} models…")
    started = time.perf_counter()
    models = bench_models(workload.arch, args.models_dir, log)
    prepare_seconds = time.perf_counter() - started
    per_picture = diffusion_flops(models["illustrator"], models.get("preview_decoder"), workload.size)

    out_dir = Path(tempfile.mkdtemp(prefix="storybook-bench-"))
    bench = Bench(workload, models, choice, variants, out_dir, log)
    results: dict[str, list[RunResult]] = {v.name: [] for v in variants}
    cold: dict[str, Any] = {}
    counted: dict[str, float] = {}
    try:
        # Warm-up: the first engine run meets an empty cache, which is the cold start we report.
        order = sorted(variants, key=lambda v: (v.naive, not v.name == "engine-same-steps"))
        for round_number in range(warmup):
            for variant in order:
                log(f"warm-up {round_number + 1}/{warmup}: {variant.name}")
                count = round_number == 0 and variant.name == "engine-default"
                result = bench.run(variant, count_flops=count)
                if count:
                    counted.update(result.flops_counted)
                if not cold and not variant.naive and result.first_image is not None:
                    process_start = _process_start_wallclock()
                    first_at = time.time() - result.end_to_end + result.first_image
                    cold = {
                        "variant": variant.name,
                        "first_image_seconds": result.first_image,
                        "load_seconds": result.stages.get("load"),
                        "run_seconds": result.end_to_end,
                        "since_process_start_seconds": (first_at - process_start) if process_start else None,
                        # Only this variant's models are loaded yet: the host memory that mode needs.
                        "peak_host_bytes": result.peak_host_bytes,
                        "dtype": str(bench.choice_for(variant).dtype).removeprefix("torch."),
                    }
        rooflines = []
        for round_number in range(repeats):
            # Measured every round and the best kept: a busy moment on a shared machine only lowers it.
            dtypes = [choice.dtype, torch.float32] + [bench.choice_for(v).dtype for v in variants]
            rooflines.append(measure_roofline(choice.device, dtypes, bench.sync, small=workload.arch == "tiny"))
            shift = round_number % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                log(f"repeat {round_number + 1}/{repeats}: {variant.name}")
                results[variant.name].append(bench.run(variant))
        equivalence = None
        pictures = args.equivalence if args.equivalence is not None else 2
        if pictures:
            if choice.dtype == torch.float32:
                equivalence = {"skipped": "the engine runs in float32 here: nothing to compare"}
            else:
                log(f"equivalence: {pictures} picture(s) in float32 and {choice.dtype}, final and draft")
                equivalence = measure_equivalence(bench, min(pictures, workload.images))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)

    roofline = best_roofline(rooflines)
    load = {"start": load_start, "end": _load_average()}
    return build_report(
        args,
        workload,
        choice,
        variants,
        results,
        roofline,
        per_picture,
        counted,
        cold,
        repeats,
        warmup,
        prepare_seconds,
        models,
        load,
        variant_choices={v.name: bench.choice_for(v) for v in variants},
        batch_sizes={v.name: bench.batch_size_for(v) for v in variants},
        equivalence=equivalence,
        cpu_speed=None if choice.is_gpu else _cpu_speed(),
    )


def _cpu_speed() -> dict:
    from engine.device import bf16_is_fast, measure_cpu_speed

    speed = measure_cpu_speed()
    return {**asdict(speed), "speedup": speed.speedup, "bf16_chosen": bf16_is_fast(speed), "text": speed.describe()}


# A reduced-precision picture counts as the same picture as fp32's when it is at least this close to it.
EQUIVALENCE_PSNR_DB = 30.0
EQUIVALENCE_MEAN_ABS_DIFF = 2.0  # in levels of 0-255


def picture_difference(a, b) -> dict:
    """PSNR (dB) and mean / largest absolute difference (0-255 levels) between two pictures of one size."""
    import numpy as np

    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    diff = np.abs(x - y)
    mse = float((diff**2).mean())
    return {
        "psnr_db": None if mse == 0 else 10 * float(np.log10(255.0**2 / mse)),  # None: identical
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff": float(diff.max()),
    }


def measure_equivalence(bench: Bench, pictures: int) -> dict:
    """The same seeds, steps and decoder in float32 and in the engine's reduced precision, picture by picture."""
    import torch

    from engine.device import DeviceChoice
    from engine.illustrate import open_illustrator

    low = bench.choice
    full = DeviceChoice(low.device, torch.float32)
    requests = [r for story in picture_requests(bench.workload, steps=None, guidance=None) for r in story][:pictures]
    out: dict[str, Any] = {
        "dtype": str(low.dtype).removeprefix("torch."),
        "pictures": len(requests),
        "thresholds": {"psnr_db": EQUIVALENCE_PSNR_DB, "mean_abs_diff": EQUIVALENCE_MEAN_ABS_DIFF},
        "modes": {},
    }
    for mode, draft in (("final", False), ("draft", True)):
        drawn = {}
        for choice in (full, low):
            with open_illustrator(bench.profile, choice, draft=draft) as illustrator:
                drawn[choice.dtype] = illustrator.illustrate([replace(r, draft=draft) for r in requests], batch_size=1)
        per = [picture_difference(a.image, b.image) for a, b in zip(drawn[full.dtype], drawn[low.dtype])]
        psnrs = [p["psnr_db"] for p in per if p["psnr_db"] is not None]
        worst_psnr = min(psnrs) if psnrs else None
        worst_mad = max(p["mean_abs_diff"] for p in per)
        out["modes"][mode] = {
            "psnr_db_min": worst_psnr,
            "mean_abs_diff_max": worst_mad,
            "max_abs_diff": max(p["max_abs_diff"] for p in per),
            "per_picture": per,
            "within_thresholds": (worst_psnr is None or worst_psnr >= EQUIVALENCE_PSNR_DB)
            and worst_mad <= EQUIVALENCE_MEAN_ABS_DIFF,
        }
    return out


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _load_average() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def build_report(
    args,
    workload,
    choice,
    variants,
    results,
    roofline,
    per_picture,
    counted,
    cold,
    repeats,
    warmup,
    prepare_seconds,
    models,
    load_average=None,
    variant_choices=None,
    batch_sizes=None,
    equivalence=None,
    cpu_speed=None,
) -> dict:
    import torch

    from engine.profiles import PROFILES

    base = PROFILES["fast" if workload.arch == "full" else "tiny"]
    from engine.device import DeviceChoice

    variant_choices = variant_choices or {
        v.name: DeviceChoice(choice.device, torch.float32) if v.naive else choice for v in variants
    }
    batch_sizes = batch_sizes or {v.name: 1 if v.naive else base.batch_size for v in variants}
    device_name = choice.describe()
    if not choice.is_gpu:
        device_name += f" ({_cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "arch": workload.arch,
        "device": device_name,
        "engine_dtype": str(choice.dtype).removeprefix("torch."),
        "naive_dtype": "float32",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "repeats": repeats,
        "warmup": warmup,
        "quick": bool(args.quick),
        "workload_text": workload.describe(),
        "models": {role: str(path) for role, path in models.items()},
        "models_prepare_seconds": prepare_seconds,
        "process_max_rss_bytes": max_rss_bytes(),
        "profile": {"name": base.name, "steps": base.steps, "guidance": base.guidance, "batch_size": base.batch_size},
        "seed_project": SEED_PROJECT,
        "load_average": load_average,
        "cpu_speed": cpu_speed,
    }
    if choice.device.startswith("cuda"):
        meta["gpu"] = torch.cuda.get_device_name()
    caption_story_flops = counted.get("captioning_and_story")
    out_variants = {}
    for variant in variants:
        runs = results[variant.name]
        steps, guidance = variant.steps_and_guidance(workload, base)
        preview = bool(variant.speed and variant.speed.preview) or variant.draft
        flops = picture_flops(per_picture, workload.images, steps, guidance, preview)
        if variant.finish == "refine":
            from engine.illustrate import REFINE_STRENGTH

            refine_steps = int(max(base.steps, round(1 / REFINE_STRENGTH)) * REFINE_STRENGTH)
            flops["denoising"] += picture_flops(per_picture, workload.images, refine_steps, guidance, False)[
                "denoising"
            ]
        if variant.whole_job and workload.captions and caption_story_flops:
            flops["captioning_and_story"] = caption_story_flops
        flops["total"] = sum(flops.values())
        stages = {}
        for stage in STAGES:
            values = [r.stages.get(stage) for r in runs]
            ran = stage in PICTURE_STAGES or (variant.whole_job and workload.captions)
            stages[stage] = summarise([v or 0.0 for v in values]) if ran else None
        stages["pictures"] = summarise([r.pictures_seconds for r in runs])
        stages["end_to_end"] = summarise([r.end_to_end for r in runs])
        median_e2e = stages["end_to_end"]["median"]
        variant_choice = variant_choices[variant.name]
        dtype_key = str(variant_choice.dtype).removeprefix("torch.")
        rate = roofline.get("best", {}).get(dtype_key) or roofline["matmul"].get(dtype_key, {}).get("flops_per_second")
        denoise = stages["denoising"]["median"] if stages.get("denoising") else 0
        entry = {
            "description": variant.description,
            "settings": {
                "steps": steps,
                "guidance": guidance,
                "dtype": dtype_key,
                "speed": asdict(variant.speed) if variant.speed else None,
                "batch_size": batch_sizes[variant.name],
                # On a CPU the engine draws the first picture alone, then full batches.
                "first_alone": not variant.naive and not choice.is_gpu and batch_sizes[variant.name] > 1,
                "draft": variant.draft,
                "finish": variant.finish,
                "whole_job": variant.whole_job,
                "saver_thread": variant.saver_thread,
            },
            "stages": stages,
            "images": runs[0].images,
            "images_per_second": summarise([r.images / r.pictures_seconds for r in runs]),
            "seconds_per_picture": summarise([r.pictures_seconds / r.images for r in runs]),
            "first_image_seconds": summarise([r.first_image for r in runs if r.first_image is not None]),
            "caption_tokens": runs[0].caption_tokens,
            "story_tokens": runs[0].story_tokens,
            "story_generate_calls": runs[0].story_calls,
            "story_tokens_per_second": (
                runs[0].story_tokens / stages["story"]["median"]
                if stages.get("story") and stages["story"]["median"]
                else None
            ),
            "peak_gpu_bytes": max((r.peak_gpu_bytes for r in runs if r.peak_gpu_bytes is not None), default=None),
            "peak_gpu_above_start_bytes": max(
                (r.peak_gpu_above_start for r in runs if r.peak_gpu_above_start is not None), default=None
            ),
            "peak_host_bytes": max(r.peak_host_bytes for r in runs),
            "flops": flops,
            "achieved_flops_per_second": flops["total"] / median_e2e if median_e2e else None,
            "denoising_flops_per_second": flops["denoising"] / denoise if denoise else None,
            "decoding_flops_per_second": (
                flops["decoding"] / stages["decoding"]["median"] if stages["decoding"]["median"] else None
            ),
            "roofline_flops_per_second": rate,
            "flop_floor_seconds": flops["total"] / rate if rate else None,
            "roofline_fraction": (flops["total"] / median_e2e) / rate if rate and median_e2e else None,
        }
        out_variants[variant.name] = entry
    report = {
        "meta": meta,
        "workload": asdict(workload),
        "roofline": roofline,
        "flops_per_picture": {
            **per_picture,
            "note": "one prompt encoding, one UNet evaluation at batch 1 "
            "(without guidance), one decode; counted on meta-device copies",
        },
        "cold_start": cold,
        "variants": out_variants,
        "equivalence": equivalence,
    }
    if "naive" in out_variants:
        naive = out_variants["naive"]
        report["speedups"] = {
            name: naive["stages"]["end_to_end"]["median"] / v["stages"]["end_to_end"]["median"]
            for name, v in out_variants.items()
            if v["settings"]["whole_job"] and name != "naive"
        }
        report["speedups_pictures"] = {
            name: naive["stages"]["pictures"]["median"] / v["stages"]["pictures"]["median"]
            for name, v in out_variants.items()
            if name != "naive"
        }
    return report


def cmd_bench(args) -> int:
    if args.cast:
        from engine.bench_cast import cmd_cast_bench

        return cmd_cast_bench(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        report = run_bench(args)
    print(render_table(report))
    for key, what in (("speedups", "end to end"), ("speedups_pictures", "pictures only")):
        if report.get(key):
            print(f"speed-up over naive, {what}: " + ", ".join(f"{k} {v:.2f}x" for k, v in report[key].items()))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="time a fixed storybook job: naive versus our engine, stage by stage",
        description="Time a fixed storybook job (pictures for two stories, captions, a story) the seed "
        "project's way and our engine's way, in one process, interleaved after a warm-up.",
    )
    p.add_argument(
        "--arch",
        choices=("tiny", "full"),
        default="tiny",
        help="tiny: the tinykit's models (CPU, CI). full: the fast profile's architectures at full "
        "size with random weights (built once, about 8 GB)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 1 repeat, 2 pictures at 2 steps, 1 caption, a 1-passage story",
    )
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; --quick 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 1)")
    p.add_argument("--images", type=int, default=None, help="pictures in all (default 12: two stories of six)")
    p.add_argument("--stories", type=int, default=None, help="stories the pictures are split into (default 2)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="naive and engine-same-steps steps (default 50 full, 20 tiny, 2 with --quick)",
    )
    p.add_argument("--guidance", type=float, default=None, help="naive and engine-same-steps guidance (default 7.5)")
    p.add_argument("--size", type=int, default=None, help="picture side in pixels (default 512 full, 64 tiny)")
    p.add_argument("--captions", type=int, default=None, help="pictures captioned and story passages (default 4)")
    p.add_argument(
        "--story-words",
        type=int,
        default=None,
        dest="story_words",
        help="words per story passage (default 35: about 300 tokens for 4 passages)",
    )
    p.add_argument(
        "--variants",
        default=None,
        help="comma-separated variants (default: all but engine-default:compile; GPU-only ones on GPU)",
    )
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: detected)")
    p.add_argument(
        "--dtype",
        default=None,
        help="the engine's number format (default: bf16 on CUDA; on a CPU bf16 where it races ahead of fp32)",
    )
    p.add_argument(
        "--models-dir",
        default=None,
        dest="models_dir",
        help="where the benchmark models are built and kept (default: the data folder)",
    )
    p.add_argument(
        "--equivalence",
        type=int,
        default=None,
        help="pictures drawn in fp32 and in the engine's reduced precision to compare (default 2; 0: skip)",
    )
    p.add_argument("--json", default=None, help="also write the full report as JSON here")
    p.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    p.add_argument(
        "--cast",
        action="store_true",
        help="instead: the cast features on fixed stories (CLIP scores all/chosen/random, consistency with and "
        "without references, seconds per page of scoring, best of N and references; engine/bench_cast.py)",
    )
    p.add_argument("--cast-profile", default=None, dest="cast_profile", help="profile for --cast (default tiny)")
    p.add_argument(
        "--cast-candidates", type=int, default=4, dest="cast_candidates", help="best of N for --cast (default 4)"
    )
    p.set_defaults(func=cmd_bench)


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.bench ...`, the same as `python -m engine bench ...`."""
    from core.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m engine.bench")
    sub = parser.add_subparsers(dest="command")
    add_parsers(sub)
    args = parser.parse_args(["bench", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.func(args)
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
