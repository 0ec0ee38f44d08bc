"""Tiny random-weight models for every role, built offline from configs in seconds.

They are saved as safetensors and loaded back through the same from_pretrained path as real models,
so tests and the `tiny` profile exercise the real loading and generation code. They draw noise and
write gibberish: they exist to prove the plumbing, never the art.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import string
import tempfile
from pathlib import Path

import torch

KIT_VERSION = "3"
ROLES = (
    "illustrator",
    "captioner",
    "storyteller",
    "storyteller_plain",
    "preview_decoder",
    "ranker",
    "judge",
    "consistency",
    "ip_adapter",
)
IP_ADAPTER_SUBFOLDER = "models"  # the published h94/IP-Adapter layout: models/ip-adapter_sd15.safetensors
IP_ADAPTER_WEIGHTS = "ip-adapter_sd15.safetensors"
IP_ADAPTER_TOKENS = 4

# Words that both text tokenizers know, so prompts and captions tokenize into real pieces.
WORDS = (
    "a an the and of in on at to with is was were he she it they his her their there once upon time "
    "little big small old young happy sad brave dog cat bird fox bear rabbit girl boy child mother father "
    "king queen dragon castle forest tree river sea boat house garden moon sun star night day sky cloud "
    "rain snow red blue green yellow white black picture photo drawing painting book story friend found "
    "lost went saw said walked ran flew home end watercolor sketch comic oil style illustration beach "
    "mountain park city street car train school cake party birthday family holiday dinner sleep dream"
).split()

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _seed(value: int = 0) -> None:
    torch.manual_seed(value)


def _clip_tokenizer_files(folder: Path) -> None:
    """A CLIP BPE vocabulary of single characters: every word splits into letters, none is unknown."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase + string.digits + ".,!?'-":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def _tiny_unet():
    from diffusers import UNet2DConditionModel

    _seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    return unet


def build_illustrator(folder: Path) -> Path:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    unet = _tiny_unet()
    _seed(0)
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
    )
    # steps_offset=1 as in SD's own config: "trailing" spacing ignores it, and 0 makes diffusers warn at every load.
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1
    )
    tok_dir = folder / "_clip_tok"
    _clip_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    _seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
        )
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    shutil.rmtree(tok_dir)
    return folder


def build_preview_decoder(folder: Path) -> Path:
    """A tiny TAESD-shaped autoencoder, matching the tiny illustrator's 4 latent channels and 2x scale."""
    from diffusers import AutoencoderTiny

    _seed(0)
    model = AutoencoderTiny(
        encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        num_encoder_blocks=(1, 1),
        num_decoder_blocks=(1, 1),
        latent_channels=4,
    )
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def wordpiece_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    pieces = list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase] + list(".,!?'")
    return specials + sorted(set(WORDS)) + pieces


def build_captioner(folder: Path) -> Path:
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.txt"
    vocab = wordpiece_vocab()
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(
        str(vocab_file),
        do_lower_case=True,
        model_max_length=64,
        bos_token="[DEC]",
        pad_token="[PAD]",
        sep_token="[SEP]",
        cls_token="[CLS]",
    )
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    processor = BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    dec, sep, pad = vocab.index("[DEC]"), vocab.index("[SEP]"), vocab.index("[PAD]")
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=64,
            encoder_hidden_size=32,
            bos_token_id=dec,
            eos_token_id=sep,
            sep_token_id=sep,
            pad_token_id=pad,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=32,
    )
    _seed(0)
    model = BlipForConditionalGeneration(config)
    model.generation_config.max_new_tokens = 12
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def _train_bpe(special: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus_path = Path(__file__).resolve().parent.parent / "assets" / "sample_story.txt"
    corpus = [" ".join(WORDS)] * 4
    if corpus_path.exists():
        corpus.append(corpus_path.read_text(encoding="utf-8"))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=special,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def build_storyteller(folder: Path, chat: bool = True) -> Path:
    """A tiny causal LM: Qwen2-shaped with a chat template, or GPT-2-shaped for plain continuation."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    if chat:
        special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=_train_bpe(special),
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
            model_max_length=2048,
        )
        tokenizer.chat_template = CHAT_TEMPLATE
        config = Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=None,
            tie_word_embeddings=True,
        )
        _seed(0)
        model = Qwen2ForCausalLM(config)
    else:
        special = ["<|endoftext|>"]
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=_train_bpe(special),
            eos_token="<|endoftext|>",
            bos_token="<|endoftext|>",
            model_max_length=1024,
        )
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=1024,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        _seed(0)
        model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def build_clip(folder: Path, seed: int = 0, width: int = 32, layers: int = 2) -> Path:
    """A tiny CLIP text-image pair (CLIPModel + CLIPProcessor), the shape of ViT-B/32 and ViT-L/14 scorers."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    tok_dir = folder / "_clip_tok"
    _clip_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    config = CLIPConfig(
        text_config=dict(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=width,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=layers,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
        ),
        vision_config=dict(
            hidden_size=width,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=layers,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    _seed(seed)
    model = CLIPModel(config)
    model.save_pretrained(folder, safe_serialization=True)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    shutil.rmtree(tok_dir)
    return folder


def build_consistency(folder: Path) -> Path:
    """A tiny DINOv2 image encoder with its image processor (the shape of facebook/dinov2-small)."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    _seed(0)
    model = Dinov2Model(
        Dinov2Config(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            image_size=32,
            patch_size=8,
        )
    )
    model.save_pretrained(folder, safe_serialization=True)
    BitImageProcessor(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        do_center_crop=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder


def build_ip_adapter(folder: Path) -> Path:
    """A tiny IP-Adapter for the tiny illustrator, in the published SD 1.5 layout.

    folder/models/ip-adapter_sd15.safetensors holds `image_proj.proj.weight/bias`, `image_proj.norm.*`
    (image embedding -> 4 tokens of the UNet's cross-attention width) and `ip_adapter.N.to_k_ip.weight`,
    `ip_adapter.N.to_v_ip.weight` for every cross-attention layer N (odd numbers, in the UNet's processor
    order), as diffusers' `load_ip_adapter` reads them; folder/models/image_encoder is a tiny
    CLIPVisionModelWithProjection.
    """
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    models = folder / IP_ADAPTER_SUBFOLDER
    models.mkdir(parents=True, exist_ok=True)
    embed_dim = 16
    _seed(0)
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            image_size=32,
            patch_size=8,
            projection_dim=embed_dim,
        )
    )
    encoder.save_pretrained(models / "image_encoder", safe_serialization=True)
    unet = _tiny_unet()
    cross = unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(1)
    weights = {
        "image_proj.proj.weight": torch.randn(cross * IP_ADAPTER_TOKENS, embed_dim, generator=generator) * 0.2,
        "image_proj.proj.bias": torch.zeros(cross * IP_ADAPTER_TOKENS),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    for number, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            block = name.split(".")
            if block[0] == "mid_block":
                hidden = unet.config.block_out_channels[-1]
            elif block[0] == "up_blocks":
                hidden = list(reversed(unet.config.block_out_channels))[int(block[1])]
            else:
                hidden = unet.config.block_out_channels[int(block[1])]
            for kind in ("to_k_ip", "to_v_ip"):
                weights[f"ip_adapter.{number}.{kind}.weight"] = torch.randn(hidden, cross, generator=generator) * 0.2
    save_file(weights, str(models / IP_ADAPTER_WEIGHTS))
    return folder


_BUILDERS = {
    "illustrator": build_illustrator,
    "preview_decoder": build_preview_decoder,
    "captioner": build_captioner,
    "storyteller": lambda folder: build_storyteller(folder, chat=True),
    "storyteller_plain": lambda folder: build_storyteller(folder, chat=False),
    "ranker": lambda folder: build_clip(folder, seed=1),
    "judge": lambda folder: build_clip(folder, seed=2, width=48, layers=3),
    "consistency": build_consistency,
    "ip_adapter": build_ip_adapter,
}


def build_tiny_models(folder: str | Path, roles=ROLES) -> dict[str, Path]:
    """Build the tiny model of each role into folder/ROLE (overwriting) and return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for role in roles:
        target = folder / role
        staging = Path(tempfile.mkdtemp(prefix=f".{role}-", dir=folder))
        try:
            _BUILDERS[role](staging)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        out[role] = target
    return out


def ensure_tiny_models(folder: str | Path | None = None) -> dict[str, Path]:
    """The tiny models, built once per folder (by default the data folder's models/tiny) and reused.

    A file lock keeps two processes (two app instances, parallel tests) from building at once.
    """
    if folder is None:
        from engine.paths import tiny_models_home

        folder = tiny_models_home()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "READY"
    paths = {role: folder / role for role in ROLES}
    if marker.exists() and marker.read_text().strip() == KIT_VERSION:
        return paths
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.exists() and marker.read_text().strip() == KIT_VERSION):
            build_tiny_models(folder)
            marker.write_text(KIT_VERSION)
    return paths
