"""Full-size models with random weights, built from the published configs of the `fast` profile's models.

Saved once as safetensors and loaded through the same from_pretrained paths as real downloads: the compute
equals the real models'. Their tokenizers are the tinykit's words, padded to the models' vocabulary sizes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InputError

if TYPE_CHECKING:
    import torch

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
FULL_KIT_VERSION = "1"
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

# --- full-size models from their published configs --------------------------------------------------


def load_config(part: str) -> dict:
    """A published config from configs/ beside this module, without our '_source' note."""
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
    from engine.tinykit import wordpiece_vocab

    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [w for w in wordpiece_vocab() if not w.startswith("[")]
    vocab += words
    vocab += [f"w{i}" for i in range(size - 2 - len(vocab))]
    return vocab + ["[DEC]", "[ENC]"]


def _qwen_tokenizer(vocab_size: int, model_config: dict):
    """A word-level tokenizer with one entry per row of Qwen's embedding: every id decodes to a word."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from engine.tinykit import CHAT_TEMPLATE, WORDS

    specials = {
        model_config["bos_token_id"]: "<|endoftext|>",
        model_config["bos_token_id"] + 1: "<|im_start|>",
        model_config["eos_token_id"]: "<|im_end|>",
    }
    words = ["[UNK]"] + sorted(set(WORDS))
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
    tokenizer.chat_template = CHAT_TEMPLATE
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
