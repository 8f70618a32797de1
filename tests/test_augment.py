"""Tests for moby_al_plugin.augment (CPU only, small tensors)."""

from __future__ import annotations

import math

import pytest
import torch

from moby_al_plugin.augment import VIEW_PRESETS, ViewAugmenter, get_view_pair

LUMA = torch.tensor([0.299, 0.587, 0.114])

# Every random op off; tests switch on the one they look at.
ALL_OFF = dict(
    crop="none",
    hflip=False,
    color_jitter=None,
    color_jitter_p=0.0,
    grayscale_p=0.0,
    blur_p=0.0,
    solarize_p=0.0,
)


def only(**kwargs) -> ViewAugmenter:
    """An augmenter with everything off except ``kwargs``."""
    return ViewAugmenter(**{**ALL_OFF, **kwargs})


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def rgb_batch() -> torch.Tensor:
    return torch.rand(6, 3, 16, 16, generator=gen(123))


def shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[i, j] = img[i + dy, j + dx]``, zero outside (what a pad crop gives)."""
    h, w = img.shape[-2:]
    out = torch.zeros_like(img)
    ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[..., yd, xd] = img[..., ys, xs]
    return out


def find_shift(out: torch.Tensor, img: torch.Tensor, pad: int) -> tuple[int, int] | None:
    """The integer shift within ``pad`` that maps ``img`` exactly onto ``out``."""
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            if torch.equal(out, shifted(img, dy, dx)):
                return dy, dx
    return None


# --------------------------------------------------------------- contract
@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("crop", ["pad", "resized", "none"])
def test_shape_dtype_range_preserved(crop: str, channels: int, size: int) -> None:
    x = torch.rand(4, channels, size, size, generator=gen(1))
    aug = ViewAugmenter(crop=crop, color_jitter_p=1.0, grayscale_p=0.5, blur_p=0.5, solarize_p=0.5)
    y = aug(x, generator=gen(2))
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert torch.isfinite(y).all()
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_large_image_and_non_square_and_other_channel_counts() -> None:
    _, strong = get_view_pair("natural", 3)
    x = torch.rand(2, 3, 224, 224, generator=gen(1))
    y = strong(x, generator=gen(2))
    assert y.shape == x.shape and 0.0 <= y.min() and y.max() <= 1.0
    for shape in [(3, 2, 20, 12), (3, 4, 12, 20)]:  # C = 2 or 4: colour ops skipped
        x = torch.rand(*shape, generator=gen(3))
        assert strong(x, generator=gen(4)).shape == x.shape


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_preserved(dtype: torch.dtype) -> None:
    _, strong = get_view_pair("natural", 3)
    x = torch.rand(3, 3, 12, 12, generator=gen(0)).to(dtype)
    y = strong(x, generator=gen(1))
    assert y.dtype == dtype and y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1


def test_input_validation() -> None:
    aug = ViewAugmenter()
    with pytest.raises(ValueError):
        aug(torch.rand(3, 8, 8))
    with pytest.raises(TypeError):
        aug(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError):
        aug([[0.0]])  # type: ignore[arg-type]
    empty = torch.rand(0, 3, 8, 8)
    assert aug(empty).shape == empty.shape


def test_all_off_is_identity_copy(rgb_batch: torch.Tensor) -> None:
    y = only()(rgb_batch, generator=gen())
    assert torch.equal(y, rgb_batch) and y.data_ptr() != rgb_batch.data_ptr()


def test_default_generator_is_used_when_none(rgb_batch: torch.Tensor) -> None:
    _, strong = get_view_pair("natural", 3)
    torch.manual_seed(5)
    a = strong(rgb_batch)
    torch.manual_seed(5)
    assert torch.equal(a, strong(rgb_batch))


# ----------------------------------------------------------- randomness
def test_same_seed_same_output_different_seed_different(rgb_batch: torch.Tensor) -> None:
    for aug in get_view_pair("natural", 3):
        a = aug(rgb_batch, generator=gen(7))
        b = aug(rgb_batch, generator=gen(7))
        c = aug(rgb_batch, generator=gen(8))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_randomness_is_per_sample() -> None:
    img = torch.rand(1, 3, 16, 16, generator=gen(9))
    batch = img.expand(8, -1, -1, -1).contiguous()
    for aug in get_view_pair("natural", 3):
        y = aug(batch, generator=gen(10))
        distinct = {tuple(v.flatten().tolist()) for v in y}
        assert len(distinct) > 1


# -------------------------------------------------------------- geometry
def test_pad_crop_single_pixel_moves_by_at_most_pad() -> None:
    x = torch.zeros(64, 1, 32, 32)
    x[:, :, 16, 16] = 0.75
    y = only(crop="pad")(x, generator=gen(3))
    assert set(y.unique().tolist()) == {0.0, 0.75}  # not interpolated
    shifts = []
    for out in y[:, 0]:
        ((iy, ix),) = (out == 0.75).nonzero().tolist()  # exactly one bright pixel
        shifts.append((iy - 16, ix - 16))
    assert max(max(abs(dy), abs(dx)) for dy, dx in shifts) <= 4  # 0.125 * 32
    assert len(set(shifts)) > 10  # really random


@pytest.mark.parametrize(("size", "pad"), [(8, 1), (28, 4), (32, 4)])
def test_pad_crop_is_exact_integer_shift(size: int, pad: int) -> None:
    x = torch.rand(24, 3, size, size, generator=gen(4)) + 0.01  # no true zeros
    y = only(crop="pad")(x, generator=gen(5))
    seen = set()
    for out, img in zip(y, x, strict=True):
        shift = find_shift(out, img, pad)
        assert shift is not None
        seen.add(shift)
    assert max(max(map(abs, s)) for s in seen) == pad  # the full range is used


def test_hflip_false_never_flips() -> None:
    x = torch.rand(32, 1, 8, 8, generator=gen(6))
    assert torch.equal(only(hflip=False)(x, generator=gen(7)), x)


def test_hflip_true_flips_about_half_exactly() -> None:
    x = torch.rand(400, 2, 8, 9, generator=gen(8))
    y = only(hflip=True)(x, generator=gen(9))
    same = torch.tensor([torch.equal(a, b) for a, b in zip(y, x, strict=True)])
    mirrored = torch.tensor([torch.equal(a, b.flip(-1)) for a, b in zip(y, x, strict=True)])
    assert bool((same ^ mirrored).all())
    assert 0.4 < mirrored.float().mean().item() < 0.6


def test_resized_crop_scales_content() -> None:
    # A horizontal ramp, cropped to a fraction fw of the width, keeps slope ~fw.
    w = 32
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w).expand(64, 1, w, w).contiguous()
    y = only(crop="resized", crop_scale=(0.25, 0.25))(ramp, generator=gen(11))
    slope = (y[..., 1:] - y[..., :-1]).mean(dim=(1, 2, 3)) * (w - 1)
    # area 1/4 with aspect ratio in (3/4, 4/3): the width fraction is in [0.43, 0.58]
    assert slope.min() > 0.42 and slope.max() < 0.59
    assert (y[..., 1:] >= y[..., :-1] - 1e-6).all()  # not flipped


def test_resized_crop_aspect_ratio_is_in_pixels() -> None:
    # 16 x 64 image, area 1/4: a crop with pixel aspect ratio r in (3/4, 4/3)
    # must have height fraction 1/sqrt(r) <= 1, so width fraction 0.25 * sqrt(r).
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(64, 1, 16, 64).contiguous()
    y = only(crop="resized", crop_scale=(0.25, 0.25))(ramp, generator=gen(12))
    rise = (y[..., 1:] - y[..., :-1]).mean(dim=(1, 2, 3)) * 63
    assert rise.min() > 0.24 and rise.max() < 0.30


# ---------------------------------------------------------------- colour
def test_solarize_hand_computed() -> None:
    x = torch.tensor([0.0, 0.25, 0.49, 0.5, 0.75, 1.0]).view(1, 1, 2, 3).repeat(2, 1, 1, 1)
    want = torch.tensor([0.0, 0.25, 0.49, 0.5, 0.25, 0.0]).view(1, 1, 2, 3)
    y = only(solarize_p=1.0)(x, generator=gen())
    assert torch.allclose(y, want.expand_as(y))


def test_grayscale_uses_luma_weights(rgb_batch: torch.Tensor) -> None:
    y = only(grayscale_p=1.0)(rgb_batch, generator=gen())
    want = (rgb_batch * LUMA.view(1, 3, 1, 1)).sum(dim=1)
    for ch in range(3):
        assert torch.allclose(y[:, ch], want, atol=1e-6)


def test_grayscale_and_rgb_jitter_skipped_on_one_channel() -> None:
    x = torch.rand(4, 1, 8, 8, generator=gen(1))
    aug = only(grayscale_p=1.0, color_jitter=(0.0, 0.0, 0.5, 0.5), color_jitter_p=1.0)
    assert torch.equal(aug(x, generator=gen()), x)


def test_brightness_multiplies_by_factor_in_range() -> None:
    x = torch.full((256, 1, 4, 4), 0.5)
    x[:, :, :2] = 0.25  # two grey levels in ratio 2:1
    y = only(color_jitter=(0.4, 0.0, 0.0, 0.0), color_jitter_p=1.0)(x, generator=gen(2))
    factor = y[:, 0, 3, 3] / 0.5
    assert torch.allclose(y[:, 0, 0, 0], 0.25 * factor)  # same factor for the whole image
    assert torch.allclose(y, x * factor.view(-1, 1, 1, 1))
    assert factor.min() >= 0.6 and factor.max() <= 1.4
    assert factor.min() < 0.65 and factor.max() > 1.35  # spans the range


def test_contrast_blends_with_mean_grey() -> None:
    # Constant image: blending with its own mean changes nothing.
    const = torch.full((16, 3, 8, 8), 0.3)
    aug = only(color_jitter=(0.0, 0.4, 0.0, 0.0), color_jitter_p=1.0)
    assert torch.allclose(aug(const, generator=gen(3)), const, atol=1e-6)
    # Two levels 0.4 / 0.6 (mean 0.5): out = 0.5 + f * (x - 0.5), f in [0.6, 1.4].
    x = torch.full((64, 1, 4, 4), 0.4)
    x[:, :, 2:] = 0.6
    y = aug(x, generator=gen(4))
    f = (y[:, 0, 3, 0] - 0.5) / 0.1
    assert torch.allclose(y, 0.5 + f.view(-1, 1, 1, 1) * (x - 0.5), atol=1e-6)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), torch.full((64,), 0.5), atol=1e-6)
    assert f.min() >= 0.6 - 1e-5 and f.max() <= 1.4 + 1e-5


def test_saturation_and_hue_keep_luma() -> None:
    # Mild colours around mid-grey, so nothing clips.
    x = 0.5 + 0.1 * (torch.rand(16, 3, 6, 6, generator=gen(5)) - 0.5)
    luma = (x * LUMA.view(1, 3, 1, 1)).sum(dim=1)
    for jitter in [(0.0, 0.0, 0.5, 0.0), (0.0, 0.0, 0.0, 0.5)]:
        y = only(color_jitter=jitter, color_jitter_p=1.0)(x, generator=gen(6))
        assert not torch.allclose(y, x)
        assert torch.allclose((y * LUMA.view(1, 3, 1, 1)).sum(dim=1), luma, atol=1e-5)
    # A grey image has no chroma: saturation and hue leave it unchanged.
    grey = torch.full((4, 3, 6, 6), 0.4)
    y = only(color_jitter=(0.0, 0.0, 0.5, 0.5), color_jitter_p=1.0)(grey, generator=gen(7))
    assert torch.allclose(y, grey, atol=1e-6)


def test_hue_rotation_keeps_chroma_norm() -> None:
    # A rotation of the (I, Q) plane keeps each pixel's chroma magnitude.
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    x = 0.5 + 0.1 * (torch.rand(8, 3, 4, 4, generator=gen(8)) - 0.5)
    y = only(color_jitter=(0.0, 0.0, 0.0, 0.5), color_jitter_p=1.0)(x, generator=gen(9))
    cx = torch.einsum("ij,bjhw->bihw", yiq, x)[:, 1:]
    cy = torch.einsum("ij,bjhw->bihw", yiq, y)[:, 1:]
    assert torch.allclose(cx.norm(dim=1), cy.norm(dim=1), atol=1e-5)


def test_color_jitter_probability_is_per_sample(rgb_batch: torch.Tensor) -> None:
    x = rgb_batch.repeat(40, 1, 1, 1)  # 240 samples
    y = only(color_jitter=(0.4, 0.4, 0.2, 0.1), color_jitter_p=0.5)(x, generator=gen(1))
    untouched = torch.tensor([torch.equal(a, b) for a, b in zip(y, x, strict=True)]).float().mean()
    assert 0.35 < untouched.item() < 0.65


# ------------------------------------------------------------------ blur
def test_blur_keeps_constant_image() -> None:
    x = torch.full((8, 3, 12, 12), 0.35)
    y = only(blur_p=1.0)(x, generator=gen(1))
    assert torch.allclose(y, x, atol=1e-6)


def test_blur_smooths_impulse_symmetrically() -> None:
    size, c = 65, 32  # kernel 7 (~10% of 65): support is +-3 pixels
    x = torch.zeros(2, 1, size, size)
    x[:, :, c, c] = 1.0
    y = only(blur_p=1.0, blur_sigma=(1.0, 1.0))(x, generator=gen(2))[:, 0]
    assert torch.allclose(y, y.flip(-1), atol=1e-7)
    assert torch.allclose(y, y.flip(-2), atol=1e-7)
    assert torch.allclose(y, y.transpose(-1, -2), atol=1e-7)
    assert torch.allclose(y.sum(dim=(1, 2)), torch.ones(2), atol=1e-5)  # mass preserved
    # Separable Gaussian: neighbour / centre = exp(-1 / (2 sigma^2)).
    assert torch.allclose(y[:, c, c + 1] / y[:, c, c], torch.tensor(math.exp(-0.5)), atol=1e-5)
    nonzero = (y[0] > 0).nonzero()
    assert nonzero.min() == c - 3 and nonzero.max() == c + 3


def test_blur_sigma_is_per_sample() -> None:
    x = torch.zeros(16, 1, 33, 33)
    x[:, :, 16, 16] = 1.0
    y = only(blur_p=1.0, blur_sigma=(0.5, 2.0))(x, generator=gen(3))
    peaks = y[:, 0, 16, 16]
    assert len(set(peaks.tolist())) == 16


# --------------------------------------------------------------- presets
def test_preset_values() -> None:
    weak, strong = get_view_pair("natural", 3)
    assert (weak.crop, weak.pad_fraction, weak.hflip) == ("pad", 0.125, True)
    assert weak.color_jitter_p == weak.grayscale_p == weak.blur_p == weak.solarize_p == 0
    assert strong.crop == "resized" and strong.crop_scale == (0.2, 1.0) and strong.hflip
    assert strong.color_jitter == (0.4, 0.4, 0.2, 0.1) and strong.color_jitter_p == 0.8
    assert (strong.grayscale_p, strong.blur_p, strong.solarize_p) == (0.2, 0.1, 0.2)
    d_weak, d_strong = get_view_pair("digits", 1)
    assert not d_weak.hflip and not d_strong.hflip
    assert d_strong.crop_scale == (0.5, 1.0)


def test_digits_preset_never_flips() -> None:
    d_weak, d_strong = get_view_pair("digits", 1)
    # Weak view: a pure integer shift, never a mirrored one.
    x = torch.rand(32, 1, 8, 8, generator=gen(1)) + 0.01
    y = d_weak(x, generator=gen(2))
    assert all(find_shift(o, i, 1) is not None for o, i in zip(y, x, strict=True))
    # Strong view geometry (+ brightness/contrast, both increasing maps) keeps
    # a left-to-right ramp increasing; blur/solarize are switched off here.
    ramp = torch.linspace(0, 1, 28).view(1, 1, 1, 28).expand(64, 1, 28, 28).contiguous()
    geo = ViewAugmenter(**{**d_strong.get_params(), "blur_p": 0.0, "solarize_p": 0.0})
    y = geo(ramp, generator=gen(3))
    assert (y[..., 1:] >= y[..., :-1] - 1e-6).all()


def test_auto_and_aliases() -> None:
    def params(pair):
        return [a.get_params() for a in pair]

    assert params(get_view_pair("auto", 3)) == params(VIEW_PRESETS["natural"])
    grey = [{**p, "hflip": False} for p in params(VIEW_PRESETS["grayscale"])]
    assert params(get_view_pair("auto", 1)) == grey
    assert params(get_view_pair("fashion_mnist", 1)) == params(get_view_pair("grayscale", 1))
    assert params(get_view_pair("Natural", 3)) == params(VIEW_PRESETS["natural"])
    weak, strong = get_view_pair("grayscale", 1)
    assert weak.hflip and strong.hflip


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_auto_never_flips_images_that_are_not_rgb(channels) -> None:
    # a left-to-right ramp stays increasing under every crop but not under a flip
    ramp = torch.linspace(0.0, 1.0, 16).expand(64, channels, 16, 16).contiguous()
    for view in get_view_pair("auto", channels):
        geometry = ViewAugmenter(
            **{
                **view.get_params(),
                "blur_p": 0.0,
                "solarize_p": 0.0,
                "color_jitter_p": 0.0,
                "grayscale_p": 0.0,
            }
        )
        y = geometry(ramp, generator=gen(5))[..., 4:12]  # inside any zero padding
        assert (y[..., 1:] >= y[..., :-1] - 1e-6).all()


def test_presets_are_fresh_instances() -> None:
    weak, _ = get_view_pair("natural", 3)
    weak.hflip = False
    assert get_view_pair("natural", 3)[0].hflip
    assert VIEW_PRESETS["natural"][0].hflip


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(ValueError) as err:
        get_view_pair("imagenet", 3)
    for name in ["natural", "grayscale", "fashion_mnist", "digits", "auto"]:
        assert name in str(err.value)
    with pytest.raises(ValueError):
        get_view_pair("natural", 0)


def test_user_pair_passes_through() -> None:
    pair = (lambda x, generator=None: x, lambda x, generator=None: 1 - x)
    assert get_view_pair(pair, 3) is pair
    with pytest.raises(TypeError):
        get_view_pair((pair[0], "not callable"), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        get_view_pair((pair[0],), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        get_view_pair(42, 3)  # type: ignore[arg-type]


# ------------------------------------------------------- constructor
def test_params_stored_unchanged_and_repr() -> None:
    scale = [0.3, 0.9]
    aug = ViewAugmenter(crop="resized", crop_scale=scale, blur_p=0.5)
    assert aug.crop_scale is scale and aug.blur_p == 0.5
    assert set(aug.get_params()) == {
        "crop",
        "pad_fraction",
        "crop_scale",
        "hflip",
        "color_jitter",
        "color_jitter_p",
        "grayscale_p",
        "blur_p",
        "blur_sigma",
        "solarize_p",
    }
    text = repr(aug)
    assert text.startswith("ViewAugmenter(") and "crop='resized'" in text and "blur_p=0.5" in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"crop": "center"},
        {"pad_fraction": -0.1},
        {"crop_scale": (0.0, 1.0)},
        {"crop_scale": (0.8, 0.2)},
        {"crop_scale": (0.2, 1.5)},
        {"color_jitter": (0.4, 0.4, 0.2)},
        {"color_jitter": (0.4, 0.4, 0.2, 0.6)},
        {"color_jitter": (-0.1, 0.0, 0.0, 0.0)},
        {"color_jitter_p": 1.5},
        {"grayscale_p": -0.1},
        {"blur_p": 2.0},
        {"blur_sigma": (0.0, 1.0)},
        {"solarize_p": -1.0},
    ],
)
def test_invalid_parameters_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ViewAugmenter(**kwargs)
