"""The hardened image loader: every broken or hostile file is refused with its own sentence,
every odd-but-valid one comes out as upright 8-bit RGB with the right pixels."""

import io
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_images as fx

from engine import imageio
from engine.errors import ImageRejected, InputError
from engine.imageio import MAX_UPLOAD_BYTES, LoadedImage, load_image, to_png_bytes


def rejected(data, name="upload.png") -> str:
    with pytest.raises(ImageRejected) as info:
        load_image(data, name=name)
    message = str(info.value)
    assert f"'{name}'" in message, "the sentence names the file"
    assert message.endswith("."), "one finished sentence"
    assert "\n" not in message
    return message


def close(pixel, expected, tolerance=3):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected))


# --- refused ------------------------------------------------------------------------------------


def test_empty_file_is_refused():
    assert "is empty (0 bytes)" in rejected(b"", "blank.png")


@pytest.mark.parametrize("keep", [20, 60, 0.5, 0.9])
def test_truncated_png_is_refused(keep):
    data = fx.encode(fx.gradient((96, 96)), "PNG")
    cut = keep if isinstance(keep, int) else int(len(data) * keep)
    message = rejected(data[:cut], "half.png")
    assert "'half.png' is cut short (an incomplete PNG file)" in message


def test_png_missing_its_tail_is_refused_as_cut_short():
    data = fx.encode(fx.gradient((96, 96)), "PNG")
    assert "is cut short (an incomplete PNG file)" in rejected(data[:-100], "tail.png")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_jpeg_is_refused(keep):
    data = fx.encode(fx.gradient((128, 128)), "JPEG", quality=90)
    assert "is cut short (an incomplete JPEG file)" in rejected(data[: int(len(data) * keep)], "half.jpg")


def test_text_renamed_png_is_refused(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("Shopping list:\n- milk\n- bread\n", encoding="utf-8")
    with pytest.raises(ImageRejected, match=r"'notes.png' holds text, not a picture"):
        load_image(fake)


def test_random_bytes_are_refused():
    assert "is not a PNG, JPEG or WebP picture" in rejected(bytes(range(256)) * 8, "noise.png")


def test_decompression_bomb_is_refused_without_decoding():
    data = fx.bomb_png(20000)
    assert len(data) < 100_000, "the bomb is small on disk"
    message = rejected(data, "bomb.png")
    assert "too many pixels" in message or "too large" in message


def test_image_just_over_our_pixel_limit_is_refused_with_its_size():
    # 7000 x 7000 = 49 MP: under Pillow's own bomb limit, over ours; sides are fine.
    data = fx.raw_png(7000, 7000, 1, 0, [b"\x00" * 875] * 7000)
    assert "is 7000 × 7000 pixels, too large" in rejected(data, "big.png")


def test_pillow_bomb_warning_is_an_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # a 20x20 picture now trips the warning
    assert "too many pixels to open safely" in rejected(fx.png((20, 20)), "warned.png")


def test_one_by_sixty_thousand_is_refused():
    data = fx.raw_png(1, 60000, 1, 0, [b"\x00"] * 60000)
    assert "is 1 × 60000 pixels, too large" in rejected(data, "thin.png")
    assert "8192 pixels on a side" in rejected(data, "thin.png")


def test_animated_gif_is_refused_with_its_sentence():
    message = rejected(fx.animated("GIF"), "dance.gif")
    assert "is a GIF, which is not supported" in message
    assert "PNG, JPEG or WebP" in message


def test_still_gif_is_refused_too():
    assert "is a GIF" in rejected(fx.encode(Image.new("RGB", (8, 8), "red"), "GIF"), "still.gif")


@pytest.mark.parametrize("fmt,kind", [("TIFF", "TIFF"), ("BMP", "BMP")])
def test_other_formats_are_named_and_refused(fmt, kind):
    assert f"is a {kind} file" in rejected(fx.encode(Image.new("RGB", (8, 8)), fmt), "scan.png")


def test_oversized_bytes_are_refused_before_parsing():
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_UPLOAD_BYTES
    assert "a picture may be at most 30.0 MB" in rejected(data, "huge.png")


def test_oversized_file_is_refused_from_its_size(tmp_path):
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as handle:  # sparse: no 30 MB written to disk
        handle.seek(MAX_UPLOAD_BYTES + 10)
        handle.write(b"\x00")
    with pytest.raises(ImageRejected, match=r"'huge.jpg' is 30.0 MB; a picture may be at most"):
        load_image(path)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(ImageRejected, match=r"'nothere\.png' was not found"):
        load_image(tmp_path / "nothere.png")
    with pytest.raises(ImageRejected, match="is not a file"):
        load_image(tmp_path)


def test_image_rejected_is_an_input_error():
    with pytest.raises(InputError):
        load_image(b"", name="x.png")


def test_refuses_when_pillow_is_told_to_accept_truncated_files(monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError):
        load_image(fx.png(), name="ok.png")


# --- accepted, and converted correctly -------------------------------------------------------------


def accepted(data, name="pic.png") -> LoadedImage:
    loaded = load_image(data, name=name)
    assert loaded.image.mode == "RGB"
    assert loaded.image.size[0] > 0
    loaded.image.getpixel((0, 0))  # decoded, not lazy
    return loaded


def test_plain_png_jpeg_webp(tmp_path):
    for fmt in ("PNG", "JPEG", "WEBP"):
        loaded = accepted(fx.encode(fx.gradient((30, 20)), fmt, **({"quality": 95} if fmt != "PNG" else {})))
        assert loaded.format == fmt and loaded.image.size == (30, 20) and loaded.notes == []
    path = tmp_path / "photo.png"
    path.write_bytes(fx.png((12, 9), (1, 2, 3)))
    loaded = load_image(path)
    assert loaded.name == "photo.png" and loaded.image.getpixel((5, 5)) == (1, 2, 3)


def test_upload_like_object_is_read():
    class Upload(io.BytesIO):
        name = "from-browser.png"

    loaded = load_image(Upload(fx.png((5, 5))))
    assert loaded.name == "from-browser.png" and loaded.image.size == (5, 5)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_webp_and_apng_take_the_first_frame(fmt):
    loaded = accepted(fx.animated(fmt, frames=3), f"anim.{fmt.lower()}")
    assert close(loaded.image.getpixel((8, 8)), (255, 0, 0), 6), "the first (red) frame"
    assert loaded.notes == [f"'anim.{fmt.lower()}' is animated and had 3 frames; the first one is used."]


def test_cmyk_jpeg_becomes_rgb():
    data = fx.encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)
    loaded = accepted(data, "print.jpg")
    assert close(loaded.image.getpixel((8, 8)), (255, 0, 0), 8)
    assert any("CMYK" in note for note in loaded.notes)


def test_48_bit_png_keeps_its_colours():
    loaded = accepted(fx.png_rgb16(rgb=(0x8000, 0x4000, 0xFFFF)), "deep.png")
    assert close(loaded.image.getpixel((1, 1)), (128, 64, 255), 1)


def test_16_bit_grey_png_is_scaled_not_clipped():
    image = Image.new("I;16", (8, 4), 1000)
    image.paste(Image.new("I;16", (4, 4), 60000), (4, 0))
    loaded = accepted(fx.encode(image, "PNG"), "grey16.png")
    left, right = loaded.image.getpixel((1, 1)), loaded.image.getpixel((6, 1))
    assert close(left, (4, 4, 4), 1) and close(right, (233, 233, 233), 1)


def test_exif_rotation_is_applied():
    loaded = accepted(fx.exif_rotated_jpeg(size=(40, 20), orientation=6), "phone.jpg")
    assert loaded.original_size == (40, 20)
    assert loaded.image.size == (20, 40), "width and height swapped"
    # Orientation 6 turns the picture 90° clockwise: the red top-left marker ends up top-right.
    assert close(loaded.image.getpixel((16, 3)), (255, 0, 0), 40)
    assert close(loaded.image.getpixel((3, 3)), (10, 200, 10), 40)
    assert any("turned upright" in note for note in loaded.notes)


def test_rgba_is_flattened_onto_white():
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 5, 10))
    image.paste((0, 0, 0, 128), (5, 0, 10, 5))
    loaded = accepted(fx.encode(image, "PNG"), "cutout.png")
    assert loaded.image.getpixel((2, 2)) == (0, 0, 255)
    assert loaded.image.getpixel((7, 8)) == (255, 255, 255), "fully transparent -> white, not red or black"
    assert close(loaded.image.getpixel((7, 2)), (127, 127, 127), 2)
    assert any("transparent" in note for note in loaded.notes)


def test_opaque_rgba_gets_no_note():
    loaded = accepted(fx.encode(Image.new("RGBA", (4, 4), (9, 8, 7, 255)), "PNG"))
    assert loaded.image.getpixel((0, 0)) == (9, 8, 7) and loaded.notes == []


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda: Image.new("L", (4, 4), 77), (77, 77, 77)),
        (lambda: Image.new("1", (4, 4), 1), (255, 255, 255)),
        (lambda: Image.new("LA", (4, 4), (0, 0)), (255, 255, 255)),
        (lambda: Image.new("RGB", (4, 4), (10, 120, 230)).convert("P", palette=Image.Palette.ADAPTIVE), (10, 120, 230)),
    ],
)
def test_grey_bilevel_and_palette_modes_become_rgb(make, expected):
    assert close(accepted(fx.encode(make(), "PNG")).image.getpixel((1, 1)), expected, 1)


def test_palette_png_with_transparent_index_is_white():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    data = fx.encode(image, "PNG", transparency=1)
    assert accepted(data).image.getpixel((1, 1)) == (255, 255, 255)


def test_to_png_bytes_round_trips():
    image = fx.gradient((17, 9))
    data = to_png_bytes(image)
    assert data.startswith(b"\x89PNG")
    again = load_image(data, name="again.png")
    assert list(again.image.get_flattened_data()) == list(image.get_flattened_data())


def test_limits_are_the_documented_ones():
    assert imageio.MAX_PIXELS == 40_000_000 and imageio.MAX_SIDE == 8192
    assert imageio.ACCEPTED_FORMATS == ("PNG", "JPEG", "WEBP")
