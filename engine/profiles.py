"""Named model sets: one model per role, plus the generation defaults that suit them.

A model reference is a Hugging Face hub id ("stabilityai/sd-turbo"), a local folder holding a
diffusers or transformers save, or "tiny:ROLE" for the random-weight models the tinykit builds offline.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.paths import data_home
from engine.errors import InputError, ModelUnavailable

ROLES = ("illustrator", "captioner", "storyteller", "preview_decoder")
# Models that judge and steer pictures (issue 19): a CLIP that ranks candidates, a different, larger
# CLIP that judges a book, DINOv2 for how alike a character looks, and the IP-Adapter for references.
# Optional: fetched only by `fetch --extras` or Settings' download of them (engine.fetch), never on first use.
EXTRA_ROLES = ("ranker", "judge", "consistency", "ip_adapter")
ALL_ROLES = ROLES + EXTRA_ROLES
TINY_PREFIX = "tiny:"


@dataclass(frozen=True)
class RoleWords:
    """What the studio, the CLI's download and the docs call one role's model, in the same words everywhere."""

    name: str  # the model, as a sentence names it: "The {name} of the 'fast' profile is not on this computer"
    does: str  # what it does, after "the model that": Settings' "What it does"
    brings: str = ""  # extra roles: what downloading it brings, after "They bring"


ROLE_WORDS: dict[str, RoleWords] = {
    "illustrator": RoleWords("picture model", "draws the pictures"),
    "captioner": RoleWords("model that reads pictures", "reads your pictures (From images)"),
    "storyteller": RoleWords("model that writes stories", "writes stories (From images)"),
    "preview_decoder": RoleWords("quick-preview model", "shows quick previews while drawing"),
    "ranker": RoleWords("scoring model", "scores each picture and picks the best of N", "scores and best of N"),
    "judge": RoleWords("judge model", "judges the book with a larger CLIP", "judging the book"),
    "consistency": RoleWords(
        "likeness model", "measures how alike a character looks across pages", "likeness across pages"
    ),
    "ip_adapter": RoleWords(
        "reference-picture adapter (IP-Adapter)", "draws pages looking at reference pictures", "reference pictures"
    ),
}


def role_name(role: str) -> str:
    """The role's model in words ("judge model"); the role itself when it has none."""
    words = ROLE_WORDS.get(role)
    return words.name if words is not None else role


# How a profile draws a page with a character's reference picture.
REFERENCE_IP_ADAPTER = "ip_adapter"  # SD 1.5 based: diffusers' load_ip_adapter
REFERENCE_SHARED_ATTENTION = "shared_attention"  # any UNet: StoryDiffusion-style shared self-attention
REFERENCE_NONE = ""

_CLIP_B32 = "openai/clip-vit-base-patch32"
_CLIP_L14 = "openai/clip-vit-large-patch14"
_DINOV2_SMALL = "facebook/dinov2-small"
_IP_ADAPTER_SD15 = "h94/IP-Adapter"
_SCORERS = {"ranker": _CLIP_B32, "judge": _CLIP_L14, "consistency": _DINOV2_SMALL}

# The files of the published SD 1.5 IP-Adapter its loader reads (engine.references.load_ip_adapter: the adapter's
# weights, then its image encoder from models/image_encoder); all in the hub cache = downloaded.
IP_ADAPTER_MARKERS = ("models/ip-adapter_sd15.safetensors", "models/image_encoder/model.safetensors")

# What each model of the extra roles costs to download, and under which licence its weights come.
MODEL_INFO: dict[str, tuple[str, str]] = {
    _CLIP_B32: ("about 600 MB", "MIT"),
    _CLIP_L14: ("about 1.7 GB", "MIT"),
    _DINOV2_SMALL: ("about 90 MB", "Apache-2.0"),
    _IP_ADAPTER_SD15: (
        "about 2.6 GB (ip-adapter_sd15.safetensors 44 MB and its OpenCLIP ViT-H image encoder 2.5 GB)",
        "Apache-2.0",
    ),
}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    models: dict[str, str]
    steps: int
    guidance: float
    width: int
    height: int
    batch_size: int = 4
    download_size: str = ""
    size_gpu: str = ""  # the download on a machine with a GPU (half-precision weights), in words
    size_cpu: str = ""  # the download on a machine without one (full-precision weights)
    chat: bool = True  # the storyteller takes a chat template (instruct model) or a plain prompt
    extra: dict = field(default_factory=dict)
    reference: str = REFERENCE_NONE  # how pages are drawn with a character's reference picture
    draft_steps: int = 1  # a draft: this many steps, decoded by the tiny preview decoder
    draft_on_cpu: bool = False  # pictures start as drafts on a CPU (docs/benchmarks.md says why)

    def model(self, role: str) -> str:
        if role not in ALL_ROLES:
            raise InputError(f"Unknown model role '{role}': use one of {', '.join(ALL_ROLES)}.")
        return self.models.get(role, "")

    def reference_methods(self) -> tuple[str, ...]:
        """The ways this profile can draw with a reference picture, the default first."""
        methods = [self.reference] if self.reference else []
        if self.model("ip_adapter") and REFERENCE_IP_ADAPTER not in methods:
            methods.append(REFERENCE_IP_ADAPTER)
        if REFERENCE_SHARED_ATTENTION not in methods and self.reference != REFERENCE_NONE:
            methods.append(REFERENCE_SHARED_ATTENTION)
        return tuple(methods)

    def with_overrides(self, overrides: dict[str, str] | None) -> Profile:
        if not overrides:
            return self
        for role in overrides:
            if role not in ALL_ROLES:
                raise InputError(f"Unknown model role '{role}': use one of {', '.join(ALL_ROLES)}.")
        return replace(self, models={**self.models, **{k: v for k, v in overrides.items() if v}})


PROFILES: dict[str, Profile] = {
    "fast": Profile(
        name="fast",
        description="SD-Turbo pictures in 4 steps, BLIP captions and a small instruct model: quick on any GPU.",
        models={
            "illustrator": "stabilityai/sd-turbo",
            "captioner": "Salesforce/blip-image-captioning-base",
            "storyteller": "Qwen/Qwen2.5-0.5B-Instruct",
            "preview_decoder": "madebyollin/taesd",
            **_SCORERS,
        },
        reference=REFERENCE_SHARED_ATTENTION,  # SD 2.1 based: no IP-Adapter exists for it
        steps=4,
        guidance=0.0,
        width=512,
        height=512,
        batch_size=6,
        size_gpu="about 5 GB",
        size_cpu="about 7 GB",
        draft_on_cpu=True,  # SD-Turbo is distilled for 1 step: a draft is 1 step and the tiny decoder
        download_size="about 5 GB with a GPU, 7 GB without (SD-Turbo 2.6 GB in fp16 or 5.2 GB in full precision, "
        "BLIP base 1 GB, Qwen2.5-0.5B 1 GB)",
    ),
    "classic": Profile(
        name="classic",
        description="Stable Diffusion 1.5 with 30 guided steps: slower, the classic picture-book look.",
        models={
            "illustrator": "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "captioner": "Salesforce/blip-image-captioning-base",
            "storyteller": "Qwen/Qwen2.5-0.5B-Instruct",
            "preview_decoder": "madebyollin/taesd",
            **_SCORERS,
            "ip_adapter": _IP_ADAPTER_SD15,
        },
        reference=REFERENCE_IP_ADAPTER,
        steps=30,
        guidance=7.5,
        draft_steps=10,
        width=512,
        height=512,
        batch_size=4,
        size_gpu="about 5 GB",
        size_cpu="about 8 GB",
        download_size="about 5 GB with a GPU, 8 GB without (SD 1.5 with its safety checker 2.7 GB in fp16 or 5.5 GB "
        "in full precision, BLIP base 1 GB, Qwen2.5-0.5B 1 GB)",
    ),
    "quality": Profile(
        name="quality",
        description=(
            "SD 1.5 with 40 steps, BLIP large captions and a 1.5B storyteller: best results, needs 8 GB of GPU memory."
        ),
        models={
            "illustrator": "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "captioner": "Salesforce/blip-image-captioning-large",
            "storyteller": "Qwen/Qwen2.5-1.5B-Instruct",
            "preview_decoder": "madebyollin/taesd",
            **_SCORERS,
            "ip_adapter": _IP_ADAPTER_SD15,
        },
        reference=REFERENCE_IP_ADAPTER,
        steps=40,
        guidance=7.0,
        draft_steps=10,
        width=512,
        height=512,
        batch_size=4,
        size_gpu="about 8 GB",
        size_cpu="about 11 GB",
        download_size="about 8 GB with a GPU, 11 GB without (SD 1.5 2.7 or 5.5 GB, BLIP large 1.9 GB, "
        "Qwen2.5-1.5B 3.1 GB)",
    ),
    "tiny": Profile(
        name="tiny",
        description=(
            "Tiny random-weight models built on this machine: runs offline in seconds, draws noise. "
            "For trying the app and for tests."
        ),
        models={role: TINY_PREFIX + role for role in ALL_ROLES},
        reference=REFERENCE_SHARED_ATTENTION,
        steps=2,
        guidance=4.0,
        width=64,
        height=64,
        batch_size=4,
        download_size="nothing to download (built locally, under 20 MB)",
    ),
}

DEFAULT_PROFILE = "fast"
_ENV_ROLE = {role: "STORYBOOK_" + role.upper() for role in ALL_ROLES}


def settings_path() -> Path:
    return data_home() / "settings.json"


def load_settings() -> dict:
    path = settings_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_settings(settings: dict) -> None:
    path = settings_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def get_profile(name: str | None = None, overrides: dict[str, str] | None = None) -> Profile:
    """The profile to use: the name given, else STORYBOOK_PROFILE, else the settings file, else 'fast'.

    Role overrides come from the settings file, then STORYBOOK_<ROLE> variables, then `overrides`.
    """
    settings = load_settings()
    saved_name = settings.get("profile") if isinstance(settings.get("profile"), str) else None
    name = name or os.environ.get("STORYBOOK_PROFILE", "").strip() or saved_name or DEFAULT_PROFILE
    if not isinstance(name, str):
        raise InputError("A profile is named by a word such as 'fast' or 'tiny'.")
    if name not in PROFILES:
        raise InputError(f"Unknown profile '{name}': choose one of {', '.join(PROFILES)}.")
    merged: dict[str, str] = {}
    saved = settings.get("overrides") if (saved_name or name) == name else None
    if isinstance(saved, dict):
        merged.update({k: str(v) for k, v in saved.items() if k in ALL_ROLES and v})
    merged.update({role: os.environ[var].strip() for role, var in _ENV_ROLE.items() if os.environ.get(var, "").strip()})
    merged.update(overrides or {})
    return PROFILES[name].with_overrides(merged)


def resolve_model(ref: str) -> str:
    """Turn a model reference into what from_pretrained takes: a hub id or an existing folder."""
    if not ref:
        raise ModelUnavailable("No model is set for this role in the chosen profile.")
    if ref.startswith(TINY_PREFIX):
        from engine import tinykit

        role = ref[len(TINY_PREFIX) :]
        if role not in tinykit.ROLES:
            raise ModelUnavailable(
                f"There is no tiny model called '{ref}': use one of "
                f"{', '.join(TINY_PREFIX + r for r in tinykit.ROLES)}."
            )
        return str(tinykit.ensure_tiny_models()[role])
    path = Path(ref).expanduser()
    if path.is_absolute() or ref.startswith(".") or path.exists():
        if not path.is_dir():
            raise ModelUnavailable(f"The model folder '{ref}' does not exist.")
        return str(path)
    return ref


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def is_downloaded(ref: str) -> bool:
    """Whether the model can load without the network: a tiny model, a local folder, or in the hub cache."""
    if ref.startswith(TINY_PREFIX):
        return True
    if Path(ref).expanduser().is_dir():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub always comes with diffusers
        return False
    # A pipeline, a transformers model, or the IP-Adapter repository (its files sit in models/, nothing at the top):
    # for the adapter, the weights the loader reads (the image encoder's small config arrives before its 2.5 GB of
    # weights, so an interrupted download would otherwise count as done).
    for markers in (("model_index.json",), ("config.json",), IP_ADAPTER_MARKERS):
        if all(isinstance(try_to_load_from_cache(ref, marker), str) for marker in markers):
            return True
    return False


def download_size_for(profile: Profile, gpu: bool) -> str:
    """What downloading the profile's models takes on a machine with (or without) a GPU, in words: GPUs load
    the half-precision weights, processors the full ones (engine.fetch.weights_variant)."""
    size = profile.size_gpu if gpu else profile.size_cpu
    if not size:
        return profile.download_size
    return f"{size} to download on this computer ({'it has a GPU' if gpu else 'it has no GPU'})"


def fetch_command(profile: Profile, extras: bool = False) -> str:
    """The shell command that downloads a profile's models for offline use later (extras: with its scoring and
    reference models too, EXTRA_ROLES)."""
    return f"python -m engine fetch --profile {profile.name}{' --extras' if extras else ''}"


def unavailable_message(ref: str, role: str, cause: BaseException | None = None) -> str:
    detail = f" ({type(cause).__name__})" if cause is not None else ""
    folder = Path(ref).expanduser()
    if folder.is_absolute() or folder.is_dir():
        return (
            f"The {role} model folder '{ref}' could not be loaded{detail}: it must hold a complete "
            f"diffusers or transformers save with safetensors weights."
        )
    why = (
        " The studio runs in offline mode (HF_HUB_OFFLINE), so the model must have been downloaded before."
        if is_offline()
        else ""
    )
    return (
        f"The {role} model '{ref}' is not on this computer or could not be read{detail}.{why} "
        f"Download it once (Settings, or 'python -m engine fetch'), or choose the 'tiny' profile to work offline."
    )
