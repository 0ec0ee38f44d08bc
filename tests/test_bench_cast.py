"""`python -m benchmarks.illustrate --cast`: the cast bench runs the real code paths and says random scores mean
nothing."""

from __future__ import annotations

import json

import pytest

from benchmarks.illustrate import cast as bench_cast
from engine.__main__ import build_parser


@pytest.fixture(scope="module")
def tiny(tiny_models, one_cpu_thread):
    return tiny_models


def test_cast_bench_reports_scores_consistency_and_costs(tiny):
    report = bench_cast.run_cast_bench("tiny", candidates=2, stories=1, pages_per_story=3, count_flops=False)
    assert report["random_weights"] and "meaningless" in report["note"]
    assert report["pages"] == 3
    clip = report["clip"]
    assert clip["all_candidates"]["n"] == 6 and clip["chosen"]["n"] == 3 and clip["random_pick"]["n"] == 3
    assert clip["chosen"]["mean"] >= clip["random_pick"]["mean"]  # the top of each page is never below a pick
    assert set(report["consistency"]) == {
        "none",
        "shared_attention@0.25",
        "shared_attention@0.5",
        "shared_attention@1.0",
        "ip_adapter",
    }
    assert {"scoring", "best_of_n", "references:ip_adapter"} <= set(report["cost_per_page"])
    text = bench_cast.render_cast(report)
    assert "NOTE: These models have random weights" in text and "best of 2" in text


def test_shared_attention_flops_grow_with_the_share_rate(tiny):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny["illustrator"], subfolder="unet")
    unet = unet.to("meta")
    flops = bench_cast.shared_attention_flops(unet, size=64, pages=4)
    rates = [flops["rates"][str(r)]["extra_attention_pct"] for r in bench_cast.SHARE_RATES]
    assert 0 < rates[0] < rates[1] < rates[2]
    assert all(v["with_reference_row_pct"] > 20 for v in flops["rates"].values())  # one more row in five


def test_bench_takes_the_cast_flags(tmp_path):
    args = build_parser().parse_args(["bench", "--cast", "--cast-candidates", "3", "--json", str(tmp_path / "x")])
    assert args.cast and args.cast_candidates == 3
    json.dumps(vars(args), default=str)
