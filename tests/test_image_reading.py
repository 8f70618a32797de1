"""Tests of ``moby_al_plugin.data.image_reading``: one image file as an array."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from moby_al_plugin import MoBYALError


def test_read_image_orientation_mode_and_size(tmp_path):
    from moby_al_plugin import read_image

    arr = np.zeros((4, 6, 3), np.uint8)
    arr[0, :, 0] = 255  # a red top row
    image = Image.fromarray(arr)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: the viewer turns the image 90 degrees clockwise
    image.save(tmp_path / "turned.png", exif=exif)
    turned = read_image(tmp_path / "turned.png")
    assert turned.shape == (6, 4, 3) and turned.dtype == np.uint8
    assert (turned[:, -1, 0] == 255).all() and (turned[:, :-1, 0] == 0).all()  # red on the right
    assert read_image(tmp_path / "turned.png", mode="L", size=3).shape == (3, 3)
    assert read_image(tmp_path / "turned.png", size=(2, 5)).shape == (2, 5, 3)
    with pytest.raises(ValueError, match="mode"):
        read_image(tmp_path / "turned.png", mode="CMYK")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(MoBYALError, match="bad.png"):
        read_image(tmp_path / "bad.png")


def test_single_channel_modes_and_extensions():
    from moby_al_plugin.data.image_reading import IMAGE_EXTENSIONS, single_channel_mode

    assert all(single_channel_mode(m) for m in ("L", "LA", "I", "F", "1"))
    assert not any(single_channel_mode(m) for m in ("RGB", "RGBA", "P", "CMYK"))
    assert ".png" in IMAGE_EXTENSIONS and all(e == e.lower() for e in IMAGE_EXTENSIONS)


# --- faithful reading: hand-made references, one per kind of image --------------------
# Each image is tiny and built with numpy + PIL; the expected 8-bit values are worked
# out by hand from the rules in moby_al_plugin.data.image_reading.


def _read(path, mode="L"):
    from moby_al_plugin import read_image

    return read_image(path, mode=mode).tolist()


GRADIENT_16 = np.array([[0, 257, 4660], [32768, 65280, 65535]], np.uint16)
# v * 255 / 65535 = v / 257, rounded: 4660 / 257 = 18.13, 32768 / 257 = 127.50
GRADIENT_16_AS_8 = [[0, 1, 18], [128, 254, 255]]


def test_16_bit_png_by_the_full_16_bit_range(tmp_path):
    Image.fromarray(GRADIENT_16).save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "I;16"
    assert _read(tmp_path / "g.png") == GRADIENT_16_AS_8
    colour = np.array(_read(tmp_path / "g.png", "RGB"))
    assert (colour == np.array(GRADIENT_16_AS_8)[..., None]).all()  # three equal channels


def test_16_bit_big_endian_tiff(tmp_path):
    Image.fromarray(GRADIENT_16.astype(">u2")).save(tmp_path / "g.tif")
    assert Image.open(tmp_path / "g.tif").mode == "I;16B"
    assert _read(tmp_path / "g.tif") == GRADIENT_16_AS_8


def test_32_bit_integer_by_its_own_range(tmp_path):
    # no declared depth below 32 bits: min -20 and max 1000, so (v + 20) / 4
    values = np.array([[-20, 0, 100], [401, 997, 1000]], np.int32)
    Image.fromarray(values).save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    assert _read(tmp_path / "i.tif") == [[0, 5, 30], [105, 254, 255]]


def test_signed_16_bit_tiff_by_the_int16_range(tmp_path):
    from PIL import TiffImagePlugin

    values = np.array([[-32768, -1, 0], [1, 16384, 32767]], np.int16)
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[339] = 2  # SampleFormat: signed integer
    Image.fromarray(values.view(np.uint16)).save(tmp_path / "s.tif", tiffinfo=tags)
    assert Image.open(tmp_path / "s.tif").mode == "I"  # 16 bits declared
    # (v + 32768) / 257: 127.498, 127.502, 127.506, 191.25
    assert _read(tmp_path / "s.tif") == [[0, 127, 128], [128, 191, 255]]


def test_float_by_its_own_finite_range(tmp_path):
    values = np.array([[-1.0, 0.0, 0.5], [1.0, 2.0, 3.0]], np.float32)
    Image.fromarray(values).save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    # min -1, max 3: (v + 1) * 63.75
    assert _read(tmp_path / "f.tif") == [[0, 64, 96], [128, 191, 255]]
    odd = np.array([[np.nan, 0.0, 1.0], [np.inf, -np.inf, 0.5]], np.float32)
    Image.fromarray(odd).save(tmp_path / "odd.tif")
    assert _read(tmp_path / "odd.tif") == [[0, 0, 255], [255, 0, 128]]


def test_constant_images_do_not_divide_by_zero(tmp_path):
    import warnings

    Image.fromarray(np.full((2, 3), 7.0, np.float32)).save(tmp_path / "f.tif")
    Image.fromarray(np.full((2, 3), 5, np.int32)).save(tmp_path / "i.tif")
    Image.fromarray(np.full((2, 3), np.nan, np.float32)).save(tmp_path / "nan.tif")
    Image.fromarray(np.full((2, 3), 1000, np.uint16)).save(tmp_path / "c16.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("f.tif", "i.tif", "nan.tif"):
            assert _read(tmp_path / name) == [[0, 0, 0], [0, 0, 0]]
        assert _read(tmp_path / "c16.png") == [[4, 4, 4], [4, 4, 4]]  # 1000 / 257 = 3.89


def test_palette_with_transparency_on_white(tmp_path):
    image = Image.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    image.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0])
    # index 0 transparent, index 1 half (alpha 128), index 2 opaque
    image.save(tmp_path / "p.png", transparency=bytes([0, 128, 255]))
    assert Image.open(tmp_path / "p.png").mode == "P"
    # blue at alpha 128 on white: 255 * 127 / 255 = 127 for red and green
    assert _read(tmp_path / "p.png", "RGB") == [[[255, 255, 255], [127, 127, 255], [0, 255, 0]]]


def test_palette_alpha_on_white(tmp_path):
    image = Image.new("PA", (3, 1))
    image.putpalette([255, 0, 0, 0, 0, 255])
    for x, pixel in enumerate([(0, 0), (1, 128), (1, 255)]):
        image.putpixel((x, 0), pixel)
    image.save(tmp_path / "pa.tif")
    assert Image.open(tmp_path / "pa.tif").mode == "PA"
    assert _read(tmp_path / "pa.tif", "RGB") == [[[255, 255, 255], [127, 127, 255], [0, 0, 255]]]


def test_grey_alpha_on_white(tmp_path):
    values = np.array([[[10, 20], [200, 255], [0, 0]]], np.uint8)
    Image.fromarray(values, "LA").save(tmp_path / "la.png")
    assert Image.open(tmp_path / "la.png").mode == "LA"
    # 10 * 20 / 255 + 255 * 235 / 255 = 235.78
    assert _read(tmp_path / "la.png") == [[236, 200, 255]]
    assert _read(tmp_path / "la.png", "RGB") == [[[236] * 3, [200] * 3, [255] * 3]]


def test_rgba_on_white(tmp_path):
    values = np.array([[[255, 0, 0, 255], [0, 0, 0, 0], [0, 100, 200, 51]]], np.uint8)
    Image.fromarray(values, "RGBA").save(tmp_path / "rgba.png")
    # alpha 51 = 0.2: 0.2 * c + 0.8 * 255 = 0.2 * c + 204
    assert _read(tmp_path / "rgba.png", "RGB") == [[[255, 0, 0], [255, 255, 255], [204, 224, 244]]]


def test_cmyk(tmp_path):
    values = np.array([[[0, 255, 255, 128], [0, 0, 0, 0], [255, 0, 0, 0], [51, 102, 0, 51]]])
    Image.fromarray(values.astype(np.uint8), "CMYK").save(tmp_path / "cmyk.tif")
    assert Image.open(tmp_path / "cmyk.tif").mode == "CMYK"
    # (255 - C) * (255 - K) / 255 per channel: 204 * 204 / 255 = 163.2, 153 * 204 / 255 = 122.4
    assert _read(tmp_path / "cmyk.tif", "RGB") == [
        [[127, 0, 0], [255, 255, 255], [0, 255, 255], [163, 122, 204]]
    ]


@pytest.mark.parametrize(
    ("orientation", "shown"),
    [
        (1, [[1, 2, 3], [4, 5, 6]]),
        (2, [[3, 2, 1], [6, 5, 4]]),  # mirrored left-right
        (3, [[6, 5, 4], [3, 2, 1]]),  # turned 180 degrees
        (4, [[4, 5, 6], [1, 2, 3]]),  # mirrored top-bottom
        (5, [[1, 4], [2, 5], [3, 6]]),  # transposed
        (6, [[4, 1], [5, 2], [6, 3]]),  # turned 90 degrees clockwise
        (7, [[6, 3], [5, 2], [4, 1]]),  # transversed
        (8, [[3, 6], [2, 5], [1, 4]]),  # turned 90 degrees anticlockwise
    ],
)
def test_exif_orientation(tmp_path, orientation, shown):
    from moby_al_plugin.data.image_reading import describe_image

    image = Image.fromarray(np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(tmp_path / "o.png", exif=exif)
    assert _read(tmp_path / "o.png") == shown
    described = describe_image(tmp_path / "o.png")
    assert (described["height"], described["width"]) == (len(shown), len(shown[0]))


def test_exif_orientation_of_a_16_bit_image(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees clockwise
    # 257 * 40 * v in 16 bits is 40 * v in 8 bits
    Image.fromarray(np.array([[1, 2, 3], [4, 5, 6]], np.uint16) * 257 * 40).save(
        tmp_path / "o16.png", exif=exif
    )
    assert _read(tmp_path / "o16.png") == [[160, 40], [200, 80], [240, 120]]


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("P", (3, 2), 0), Image.new("P", (3, 2), 1)]
    for frame in frames:
        frame.putpalette([10, 20, 30, 200, 100, 50])
    frames[1].putpixel((0, 0), 0)  # the frames differ
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(tmp_path / "a.gif").n_frames == 2
    assert _read(tmp_path / "a.gif", "RGB") == [[[10, 20, 30]] * 3] * 2


def test_bilevel(tmp_path):
    Image.fromarray(np.array([[0, 1, 0]], bool)).save(tmp_path / "b.png")
    assert Image.open(tmp_path / "b.png").mode == "1"
    assert _read(tmp_path / "b.png") == [[0, 255, 0]]


def test_truncated_and_unreadable_files_name_the_file(tmp_path):
    from moby_al_plugin.data.image_reading import READ_ERRORS, describe_image

    Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64) * 16).save(tmp_path / "g.png")
    data = (tmp_path / "g.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MoBYALError, match="cannot read image .*cut.png"):
        _read(tmp_path / "cut.png")
    with pytest.raises(READ_ERRORS):
        describe_image(tmp_path / "cut.png")
    with pytest.raises(MoBYALError, match="missing.png"):
        _read(tmp_path / "missing.png")


def test_palette_alpha_is_colour():
    from moby_al_plugin.data.image_reading import single_channel_mode

    assert not single_channel_mode("PA")
    assert all(single_channel_mode(m) for m in ("I;16", "I;16B", "LA"))


def test_the_labelling_folder_reads_through_the_same_reader(tmp_path):
    from moby_al_plugin import read_image
    from moby_al_plugin.labelling.folder import index_folder, read_pixels

    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(GRADIENT_16[:, :2]).save(root / "deep.png")
    Image.fromarray(np.array([[[10, 20], [200, 255]]] * 2, np.uint8), "LA").save(root / "la.png")
    index = index_folder(root)
    by_path = {i["path"]: i for i in index.images}
    assert by_path["deep.png"]["mode"] == "I;16" and index.single_channel
    assert (by_path["deep.png"]["width"], by_path["deep.png"]["height"]) == (2, 2)

    class Store:  # the three things read_pixels asks a LabelStore
        images_root = root

        def meta(self, key):
            return {"mode": "L", "image_size": "2"}[key]

        def image_paths(self):
            return {1: "deep.png", 2: "la.png"}

    X = read_pixels(Store(), [1, 2])
    assert X.tolist() == [[[0, 1], [128, 254]], [[236, 200], [236, 200]]]
    assert np.array_equal(X[0], read_image(root / "deep.png", "L", 2))


def _odd_folder(tmp_path):
    """Two good PNGs beside a link loop, a dangling link, a pipe, a socket and a non-UTF-8 name."""
    from PIL import Image

    folder = tmp_path / "odd"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("L", (8, 8), 128).save(folder / name)
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "gone.png").symlink_to(folder / "nowhere.png")
    os.mkfifo(folder / "fifo.png")
    import socket

    listening = socket.socket(socket.AF_UNIX)  # a socket file, bound and left behind
    listening.bind(str(folder / "sock.png"))
    listening.close()
    with open(os.path.join(os.fsencode(folder), b"bad\xff.png"), "wb") as handle:
        handle.write((folder / "a.png").read_bytes())
    return folder


def test_odd_files_are_refused_without_being_opened(tmp_path):
    from moby_al_plugin.data.image_reading import list_image_files

    files, ignored, refused = list_image_files(_odd_folder(tmp_path))  # a pipe would hang here
    assert [path.name for path in files] == ["a.png", "b.png"]
    reasons = dict(refused)
    assert set(reasons) == {"bad\\xff.png", "fifo.png", "gone.png", "loop.png", "sock.png"}
    assert "not a regular file" in reasons["sock.png"]
    assert "not valid UTF-8" in reasons["bad\\xff.png"]
    assert "not a regular file" in reasons["fifo.png"]
    assert (
        "cannot be followed" in reasons["loop.png"] and "cannot be followed" in reasons["gone.png"]
    )
    assert ignored == []


def _write_declared_png(path, width, height):
    """An RGBA PNG of ``width`` x ``height`` transparent pixels, written row by row.

    The file is small (the rows compress to almost nothing) and so is this
    function's memory: no image of that size is ever held.
    """
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\0" + bytes(4 * width)  # filter byte, then RGBA zeros
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_a_small_file_declaring_a_huge_image_is_refused_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "huge.png"
    _write_declared_png(path, 8000, 8000)
    assert path.stat().st_size < 1_000_000
    script = (
        "import sys\n"
        "from moby_al_plugin.data.image_reading import READ_ERRORS, describe_image\n"
        "try:\n"
        "    describe_image(sys.argv[1])\n"
        "except READ_ERRORS as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        # the peak of this process's own memory (ru_maxrss would count the forked parent)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(int(hwm.split()[1]) // 1024, 'MB')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    refused, peak = done.stdout.splitlines()
    assert refused.startswith("ImageTooLargeError image too large: 8000 x 8000 pixels")
    # before the bound: 3.2 GB; now the interpreter, numpy and Pillow, nothing decoded
    assert int(peak.split()[0]) < 300, done.stdout


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    from PIL import Image

    from moby_al_plugin.data import image_reading

    path = tmp_path / "photo.jpg"
    Image.new("RGB", (400, 300), (200, 30, 30)).save(path, quality=90)
    monkeypatch.setattr(image_reading, "MAX_DECODED_PIXELS", 10_000)
    described = image_reading.describe_image(path)
    assert described["width"] * described["height"] <= 10_000  # 1/4: 100 x 75
    assert (described["width"], described["height"]) == (100, 75)
    pixels = image_reading.read_image(path, "RGB", 16)
    assert pixels.shape == (16, 16, 3) and abs(int(pixels[8, 8, 0]) - 200) < 10
    png = tmp_path / "large.png"
    Image.new("L", (200, 100)).save(png)
    with pytest.raises(MoBYALError, match="image too large: 200 x 100"):
        image_reading.read_image(png)
