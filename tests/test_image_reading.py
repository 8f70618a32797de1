"""Tests of ``moby_al_plugin.image_reading``: one image file as an array."""

from __future__ import annotations

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
    from moby_al_plugin.image_reading import IMAGE_EXTENSIONS, single_channel_mode

    assert all(single_channel_mode(m) for m in ("L", "LA", "I", "F", "1"))
    assert not any(single_channel_mode(m) for m in ("RGB", "RGBA", "P", "CMYK"))
    assert ".png" in IMAGE_EXTENSIONS and all(e == e.lower() for e in IMAGE_EXTENSIONS)
