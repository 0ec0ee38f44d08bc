"""FLOPs of the pictures, counted with torch's FlopCounterMode on meta-device models (no compute)."""

from __future__ import annotations

import json
from pathlib import Path

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
