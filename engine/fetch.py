"""Download a profile's models once, so the studio runs offline after: for `python -m engine fetch` and
the studio's "Download now" button, which runs it on a thread of its own (network, not GPU work).

Only what the loaders read is fetched: the picture model through the pipeline's own download (its
folders, safetensors, the weights variant this machine loads), the others as their configs, tokenizer
and safetensors weights.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError
from engine.profiles import (
    EXTRA_ROLES,
    MODEL_INFO,
    ROLES,
    TINY_PREFIX,
    Profile,
    is_downloaded,
    is_offline,
    role_name,
)

# What a transformers model or a single diffusers model needs: its configs, tokenizer and safetensors
# weights. Repositories also carry .bin, .h5, .msgpack and ONNX copies of the same weights, never read.
MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*", "vocab*"]
WEIGHTS = ("auto", "fp16", "full")
# The published SD 1.5 IP-Adapter: its weights and the image encoder beside them, nothing else in the repository.
IP_ADAPTER_FILES = [
    "models/ip-adapter_sd15.safetensors",
    "models/image_encoder/*.json",
    "models/image_encoder/*.safetensors",
]


_SIZE = re.compile(r"^about ([0-9.]+) ([MG])B\b")


def extras_size(profile: Profile, roles: Sequence[str] | None = None) -> str:
    """What downloading the profile's scoring and reference models (`roles`: these only) takes, in words, from
    MODEL_INFO: 'about 5.0 GB'; "" when a model's size is not known (a model set by hand)."""
    total = 0.0
    for role in roles if roles is not None else EXTRA_ROLES:
        ref = profile.model(role)
        if not ref or ref.startswith(TINY_PREFIX) or Path(ref).expanduser().is_dir():
            continue
        found = _SIZE.match(MODEL_INFO.get(ref, ("", ""))[0])
        if found is None:
            return ""
        total += float(found.group(1)) * (1e6 if found.group(2) == "M" else 1e9)
    if total == 0:
        return ""
    return f"about {total / 1e6:.0f} MB" if total < 1e9 else f"about {total / 1e9:.1f} GB"


def extra_models(profile: Profile) -> list[tuple[str, str, str, str]]:
    """(role, model, size, licence) of the profile's scoring and reference models, for `fetch` to list."""
    rows = []
    for role in EXTRA_ROLES:
        ref = profile.model(role)
        if ref:
            size, licence = MODEL_INFO.get(ref, ("built locally" if ref.startswith(TINY_PREFIX) else "unknown", ""))
            rows.append((role, ref, size, licence or ("none (random weights)" if ref.startswith(TINY_PREFIX) else "")))
    return rows


OFFLINE_MESSAGE = (
    "The studio was started in offline mode (the HF_HUB_OFFLINE setting), so it cannot download anything. "
    "To download the models, close the studio and start it again without that setting; to try the studio "
    "now, use the tiny profile, which needs no download."
)


def download_error_message(ref: str, exc: BaseException) -> str:
    """One plain sentence for a failed download: no network, no such model, a full disk, or something else."""
    import errno

    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"RepositoryNotFoundError", "RevisionNotFoundError"}:
        return f"The model '{ref}' was not found on the Hugging Face hub: check its name in the profile."
    if "GatedRepoError" in names:
        return (
            f"The model '{ref}' needs you to accept its licence on huggingface.co and to log in "
            "('hf auth login') before it can be downloaded."
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"The disk is full, so '{ref}' could not be downloaded: free some space, then try again."
    network = {
        "ConnectionError",
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "TimeoutException",
        "TransportError",
        "NetworkError",
        "OfflineModeIsEnabled",
        "LocalEntryNotFoundError",
        "timeout",
    }
    if names & network or isinstance(exc, OSError):
        return (
            "The internet could not be reached, so the models could not be downloaded. Check that this "
            "computer is connected, then try again."
        )
    return f"Downloading '{ref}' stopped with an error ({type(exc).__name__}): try again later."


def weights_variant(choice) -> str | None:
    """The weights a pipeline loads on this device: fp16 files for half precision, else the full ones.

    engine.illustrate loads `variant="fp16"` whenever it runs in half precision, so fetch takes those.
    """
    import torch

    return "fp16" if choice.dtype in (torch.float16, torch.bfloat16) else None


def fetch_model(role: str, ref: str, variant: str | None) -> None:
    """Download one hub model into the Hugging Face cache: only the files its loader reads."""
    if role == "ip_adapter":
        from huggingface_hub import snapshot_download

        snapshot_download(ref, allow_patterns=IP_ADAPTER_FILES)
    elif role == "illustrator":
        from diffusers import DiffusionPipeline

        # The pipeline's own download: the folders model_index.json names, safetensors only, the
        # variant where a component has one. A repository's single-file checkpoints (several GB
        # beside the diffusers folders) and its other variants stay on the hub.
        DiffusionPipeline.download(ref, variant=variant, use_safetensors=True)
    else:
        from huggingface_hub import snapshot_download

        snapshot_download(ref, allow_patterns=MODEL_FILES)


def fetch_profile(
    profile: Profile,
    weights: str = "auto",
    say: Callable[[str, str], None] = lambda role, what: None,
    *,
    extras: bool = False,
    main: bool = True,
) -> None:
    """Make every model of `profile` loadable offline; `say(role, what)` hears about each model in turn.

    extras: also the scoring and reference models (EXTRA_ROLES), which nothing else downloads (`fetch --extras`,
    or Settings' download of them). main=False with extras: those only, not the profile's own models (ROLES).
    InputError (one sentence) when offline or when a download fails; what came before stays downloaded.
    """
    from engine.device import pick_device
    from engine.tinykit import ensure_tiny_models

    if weights not in WEIGHTS:
        raise InputError(f"The weights must be one of {', '.join(WEIGHTS)}, not {weights!r}.")
    if is_offline():
        raise InputError(OFFLINE_MESSAGE)
    variant = weights_variant(pick_device()) if weights == "auto" else ("fp16" if weights == "fp16" else None)
    for role in (ROLES if main else ()) + (EXTRA_ROLES if extras else ()):
        ref = profile.model(role)
        if not ref:
            continue
        if ref.startswith(TINY_PREFIX):
            ensure_tiny_models()
            say(role, "tiny model ready")
            continue
        if Path(ref).expanduser().is_dir():
            say(role, f"local folder {ref}")
            continue
        which = f" ({variant} weights)" if variant and role == "illustrator" else ""
        say(role, f"downloading {ref}{which} …")
        try:
            fetch_model(role, ref, variant)
        except Exception as exc:  # noqa: BLE001 - the hub's many error types become one sentence
            raise InputError(download_error_message(ref, exc)) from None


@dataclass
class Download:
    """One profile's download as the studio shows it: its own models, or (extras) its scoring and reference ones."""

    profile: str
    extras: bool = False
    state: str = "running"  # running | done | failed
    step: str = ""  # what is being fetched now, in words
    error: str = ""  # the sentence, when it failed
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"


class Downloads:
    """The studio's model downloads, shared by every tab and user: per profile, one thread for its own models and
    one for its scoring and reference models (extras)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_profile: dict[tuple[str, bool], Download] = {}

    def start(self, profile: Profile, *, extras: bool = False) -> Download:
        """Start downloading `profile`'s models (extras: its scoring and reference models only) unless that is
        already under way; the download either way."""
        key = (profile.name, extras)
        with self._lock:
            current = self._by_profile.get(key)
            if current is not None and current.running:
                return current
            download = self._by_profile[key] = Download(profile.name, extras, step="starting…")
        name = f"fetch-{profile.name}{'-extras' if extras else ''}"
        threading.Thread(target=self._run, args=(profile, download), name=name, daemon=True).start()
        return download

    def get(self, profile_name: str, *, extras: bool = False) -> Download | None:
        with self._lock:
            return self._by_profile.get((profile_name, extras))

    def _run(self, profile: Profile, download: Download) -> None:
        def say(role: str, what: str) -> None:
            download.step = f"the {role_name(role)}: {what}"  # the words of the notes

        roles = EXTRA_ROLES if download.extras else ROLES
        try:
            if download.extras:
                fetch_profile(profile, say=say, extras=True, main=False)
            else:
                fetch_profile(profile, say=say)
            missing = [profile.model(r) for r in roles if profile.model(r) and not is_downloaded(profile.model(r))]
            if missing:
                raise InputError(
                    f"The download ended but {', '.join(missing)} still cannot be loaded offline: try again."
                )
            download.state, download.step = "done", ""
        except InputError as exc:
            download.state, download.error = "failed", exc.message
        except Exception as exc:  # noqa: BLE001 - a thread's failure must reach the page as a sentence
            download.state, download.error = "failed", download_error_message(profile.name, exc)
        finally:
            download.ended = time.monotonic()


_downloads: Downloads | None = None
_downloads_lock = threading.Lock()


def get_downloads() -> Downloads:
    global _downloads
    with _downloads_lock:
        if _downloads is None:
            _downloads = Downloads()
        return _downloads
