"""What the studio's cast jobs cost per picture on this computer: "Measure likeness" (DINOv2-small image
embeddings, engine.scoring.ConsistencyScorer) and "Judge the book" (CLIP ViT-L/14, engine.scoring.ClipScorer).

    python -m benchmarks.cast_jobs [--pictures 12] [--repeats 3] [--size 512] [--dtype float32|bfloat16]

The models are the published architectures at full size (DINOv2-small: 22 M parameters; CLIP ViT-L/14: 428 M),
built from their configs with random weights, so nothing is downloaded: the figures are the real code paths
and the real amount of compute, and the scores they give are meaningless. The judge's text side uses the tiny
test tokenizer (a few pieces per page; the real one makes more tokens, within the same 77-token window).
Pictures are `--size` px noise, resized by each model's own image processor (224 px crops) as real pages are.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks import timing

PAGE_TEXT = "Mara walked on the rocks by the sea, and a gull flew over the water."


# torch, transformers and the engine's scorers are imported inside the functions: importing the benchmarks
# package stays light (tests/test_layering.py).


def dinov2_small():
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    from engine.scoring import ConsistencyScorer

    torch.manual_seed(0)
    model = Dinov2Model(
        Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536)
    ).eval()
    processor = BitImageProcessor(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        do_center_crop=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    return ConsistencyScorer(model, processor, "dinov2-small (random weights)")


def clip_l14(folder: Path):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from engine.scoring import ClipScorer
    from engine.tinykit import build_clip

    tokenizer = CLIPProcessor.from_pretrained(build_clip(folder / "tiny")).tokenizer  # the test kit's tokenizer
    torch.manual_seed(0)
    model = CLIPModel(
        CLIPConfig(
            text_config=dict(
                hidden_size=768,
                intermediate_size=3072,
                num_attention_heads=12,
                num_hidden_layers=12,
                vocab_size=49408,
                max_position_embeddings=77,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            ),
            vision_config=dict(
                hidden_size=1024,
                intermediate_size=4096,
                num_attention_heads=16,
                num_hidden_layers=24,
                image_size=224,
                patch_size=14,
            ),
            projection_dim=768,
        )
    ).eval()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer)
    return ClipScorer(model, processor, "clip-vit-large-patch14 (random weights)", "judge")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="the number format (the engine picks bfloat16 on a processor that runs it fast, engine.device)",
    )
    args = parser.parse_args(argv)
    import numpy as np
    import torch
    from PIL import Image

    dtype = getattr(torch, args.dtype)
    rng = np.random.default_rng(0)
    pictures = [
        Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)) for _ in range(args.pictures)
    ]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}, "
        f"{args.pictures} pictures of {args.size} px"
    )

    started = time.perf_counter()
    likeness = dinov2_small()
    likeness.model = likeness.model.to(dtype)
    print(f"DINOv2-small built in {time.perf_counter() - started:.1f} s")
    # One character on every page: the job embeds each page's picture once and compares all pairs.
    runs = timing.measure(
        f"Measure likeness, {args.pictures} pages", lambda: likeness.score(pictures), args.repeats, digits=2
    )
    print(f"  per picture: {min(runs.walls) / args.pictures * 1000:.0f} ms wall")

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        judge = clip_l14(Path(folder))
        judge.model = judge.model.to(dtype)
        print(f"CLIP ViT-L/14 built in {time.perf_counter() - started:.1f} s")

        def judge_all() -> list[float]:  # the judge job scores one page at a time, as it arrives from disk
            return [judge.score([picture], [PAGE_TEXT])[0] for picture in pictures]

        runs = timing.measure(f"Judge the book, {args.pictures} pages", judge_all, args.repeats, digits=2)
        print(f"  per picture: {min(runs.walls) / args.pictures * 1000:.0f} ms wall")
    print("Scores from random weights are meaningless; only the times are figures.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
