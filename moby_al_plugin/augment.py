"""Batched, vectorised image augmentations for the two MoBY views.

Every operation acts on a whole ``(B, C, H, W)`` batch at once with
per-sample random parameters (no Python loop over samples), runs on the
device of the input and draws all of its randomness from an optional
:class:`torch.Generator`, so that a seeded generator gives reproducible views.

Pipeline order of :class:`ViewAugmenter` (fixed):

1. crop + horizontal flip, as ONE ``affine_grid`` / ``grid_sample`` call;
2. colour jitter: brightness -> contrast -> saturation -> hue;
3. random grayscale;
4. Gaussian blur;
5. solarize.

Colour operations that need three channels (saturation, hue, grayscale) are
silently skipped when ``C != 3``; brightness, contrast, blur and solarize work
for any number of channels.

The presets follow the MoBYv2AL design: the *weak* view is a pad-crop plus a
horizontal flip, the *strong* view a random resized crop with flip, colour
jitter, grayscale, blur and solarize (see :data:`VIEW_PRESETS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ._validation import check_integer

__all__ = ["VIEW_PRESETS", "ViewAugmenter", "get_view_pair"]

# ITU-R BT.601 luma weights (what PIL/torchvision use for "L" conversion).
_LUMA = (0.299, 0.587, 0.114)
# RGB -> YIQ matrix; hue jitter rotates the (I, Q) chroma plane.
_RGB_TO_YIQ = (
    (0.299, 0.587, 0.114),
    (0.596, -0.274, -0.322),
    (0.211, -0.523, 0.312),
)
# Its inverse, computed once on the host (no linalg call on the device).
_YIQ_TO_RGB = tuple(
    map(tuple, torch.linalg.inv(torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)).tolist())
)
_CROP_MODES = ("pad", "resized", "none")
# Log-uniform aspect-ratio range of the random resized crop.
_RESIZED_RATIO = (3.0 / 4.0, 4.0 / 3.0)
# Candidates drawn per sample for the resized crop (rejection sampling, vectorised).
_RESIZED_TRIES = 10


def _check_prob(name: str, p: float) -> None:
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_range(name: str, rng: Any, low: float, high: float, strict_low: bool) -> None:
    try:
        lo, hi = (float(v) for v in rng)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {rng!r}") from None
    bad_low = lo <= low if strict_low else lo < low
    if bad_low or hi > high or lo > hi:
        bound = "(" if strict_low else "["
        raise ValueError(f"{name} must satisfy {bound}{low}, {high}] with low <= high, got {rng!r}")


def _jitter_strengths(color_jitter: Any) -> tuple[float, float, float, float]:
    """Return ``color_jitter`` as four floats; ``None`` means no jitter."""
    if color_jitter is None:
        return (0.0, 0.0, 0.0, 0.0)
    try:
        values = tuple(float(v) for v in color_jitter)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 4:
        raise ValueError(
            f"color_jitter must be (brightness, contrast, saturation, hue), got {color_jitter!r}"
        )
    if min(values) < 0.0 or not math.isfinite(sum(values)) or values[3] > 0.5:
        raise ValueError(f"color_jitter strengths must be >= 0 (hue <= 0.5), got {color_jitter!r}")
    return values  # type: ignore[return-value]


def _uniform(
    n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``n`` float32 samples from U(low, high) on ``device``."""
    u = torch.rand(n, generator=generator, device=device)
    return low + (high - low) * u


def _bernoulli(
    n: int, p: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Per-sample boolean mask with ``P(True) = p`` (exact for p in {0, 1})."""
    return torch.rand(n, generator=generator, device=device) < p


def _luma(x: torch.Tensor) -> torch.Tensor:
    """Greyscale ``(B, 1, H, W)`` of an RGB batch."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _pad_size(fraction: float, side: int) -> int:
    """Half-up rounded ``fraction * side``, at least 1 unless ``fraction == 0``."""
    if fraction == 0:
        return 0
    return max(1, int(math.floor(fraction * side + 0.5)))


def _blur_radius(side: int) -> int:
    """Half-width of the blur kernel: odd size ~10% of ``side``, at least 3.

    Capped at ``side - 1`` because reflect padding needs pad < side.
    """
    size = max(3, 2 * (side // 20) + 1)
    return min(size // 2, side - 1)


def _gaussian_kernels(sigma: torch.Tensor, radius: int, dtype: torch.dtype) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels ``(B, 2 * radius + 1)``, one per sigma."""
    t = torch.arange(-radius, radius + 1, device=sigma.device, dtype=dtype)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2.0 * sigma.view(-1, 1).to(dtype) ** 2))
    return k / k.sum(dim=1, keepdim=True)


class ViewAugmenter:
    """Random augmentation of a batch of images, one draw of parameters per sample.

    A plain callable (it has nothing to train). Parameters are stored
    unchanged as attributes of the same name.

    Parameters
    ----------
    crop : {"pad", "resized", "none"}, default "pad"
        ``"pad"``: random crop after zero padding of ``round(pad_fraction * side)``
        pixels on each side (at least 1 px), i.e. an exact integer shift in
        ``[-pad, pad]`` per axis, vacated pixels set to 0.
        ``"resized"``: random resized crop, area fraction ~ U(``crop_scale``),
        aspect ratio log-uniform in (3/4, 4/3), resized back to ``H x W`` with
        bilinear interpolation. ``"none"``: no crop.
    pad_fraction : float, default 0.125
        Padding of the ``"pad"`` crop as a fraction of the side (4 px on 32 x 32).
        ``0`` disables the shift.
    crop_scale : (float, float), default (0.2, 1.0)
        Range of the crop area fraction for ``"resized"``, within (0, 1].
    hflip : bool, default True
        Flip horizontally with probability 1/2 per sample.
    color_jitter : (float, float, float, float) or None, default (0.4, 0.4, 0.2, 0.1)
        Strengths ``(brightness, contrast, saturation, hue)``. Brightness,
        contrast and saturation factors are drawn from
        ``[max(0, 1 - s), 1 + s]``; the hue shift from ``[-hue, hue]`` turns
        (a fraction of a full turn, ``hue <= 0.5``). Applied in this order;
        saturation and hue only when ``C == 3``. ``None`` disables jitter.
    color_jitter_p : float, default 0.8
        Per-sample probability of applying the colour jitter.
    grayscale_p : float, default 0.2
        Per-sample probability of converting to greyscale (luma, channels kept);
        only when ``C == 3``.
    blur_p : float, default 0.1
        Per-sample probability of a Gaussian blur (separable, reflect padding,
        odd kernel size about 10% of the side, at least 3).
    blur_sigma : (float, float), default (0.1, 2.0)
        Range of the blur standard deviation in pixels, drawn uniformly.
    solarize_p : float, default 0.2
        Per-sample probability of solarizing (``x -> 1 - x`` where ``x >= 0.5``).

    Notes
    -----
    Inputs are float tensors ``(B, C, H, W)`` with values in [0, 1]. The output
    has the same shape, dtype and device, with values in [0, 1], and is always
    a new tensor. Half-precision inputs are processed in float32.
    """

    def __init__(
        self,
        *,
        crop: str = "pad",
        pad_fraction: float = 0.125,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        hflip: bool = True,
        color_jitter: tuple[float, float, float, float] | None = (0.4, 0.4, 0.2, 0.1),
        color_jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.1,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        solarize_p: float = 0.2,
    ) -> None:
        if crop not in _CROP_MODES:
            raise ValueError(f"crop must be one of {_CROP_MODES}, got {crop!r}")
        if not 0.0 <= float(pad_fraction) < 1.0:
            raise ValueError(f"pad_fraction must be in [0, 1), got {pad_fraction!r}")
        _check_range("crop_scale", crop_scale, 0.0, 1.0, strict_low=True)
        _check_range("blur_sigma", blur_sigma, 0.0, math.inf, strict_low=True)
        _jitter_strengths(color_jitter)
        for name, p in (
            ("color_jitter_p", color_jitter_p),
            ("grayscale_p", grayscale_p),
            ("blur_p", blur_p),
            ("solarize_p", solarize_p),
        ):
            _check_prob(name, p)
        self.crop = crop
        self.pad_fraction = pad_fraction
        self.crop_scale = crop_scale
        self.hflip = hflip
        self.color_jitter = color_jitter
        self.color_jitter_p = color_jitter_p
        self.grayscale_p = grayscale_p
        self.blur_p = blur_p
        self.blur_sigma = blur_sigma
        self.solarize_p = solarize_p

    _PARAM_NAMES = (
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
    )

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters as a dict (values as stored)."""
        return {name: getattr(self, name) for name in self._PARAM_NAMES}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ call
    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch.

        Parameters
        ----------
        x : torch.Tensor
            Float tensor ``(B, C, H, W)`` with values in [0, 1].
        generator : torch.Generator, optional
            Source of all randomness; must live on the same device type as
            ``x``. ``None`` uses torch's default generator for that device.

        Returns
        -------
        torch.Tensor
            Augmented batch, same shape, dtype and device as ``x``.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"expected a floating-point tensor, got {x.dtype}")
        if generator is not None and generator.device.type != x.device.type:
            raise ValueError(
                f"generator is on {generator.device} but the input is on {x.device}; "
                "create the generator on the input's device"
            )
        if x.shape[0] == 0:
            return x.clone()

        in_dtype = x.dtype
        # grid_sample / conv2d lack some half kernels on CPU; float32 is cheap here.
        out = x.float() if in_dtype in (torch.float16, torch.bfloat16) else x
        out = self._crop_flip(out, generator)
        out = self._color_jitter(out, generator)
        out = self._grayscale(out, generator)
        out = self._blur(out, generator)
        out = self._solarize(out, generator)
        if out is x:  # every op disabled: still hand back a fresh tensor
            out = x.clone()
        return out.to(in_dtype)

    # ------------------------------------------------------------ geometry
    def _crop_flip(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Crop and flip with one per-sample affine warp."""
        b, _, h, w = x.shape
        dev, dt = x.device, x.dtype
        pad_h, pad_w = _pad_size(self.pad_fraction, h), _pad_size(self.pad_fraction, w)
        no_crop = self.crop == "none" or (self.crop == "pad" and pad_h == pad_w == 0)
        if no_crop and not self.hflip:
            return x

        # theta maps output coords (normalised, [-1, 1]) to input coords.
        theta = torch.zeros(b, 2, 3, device=dev, dtype=dt)
        sign = torch.ones(b, device=dev, dtype=dt)
        if self.hflip:
            sign = torch.where(_bernoulli(b, 0.5, g, dev), -sign, sign)

        if self.crop == "resized":
            lo, hi = (float(v) for v in self.crop_scale)
            shape = (b, _RESIZED_TRIES)
            area = lo + (hi - lo) * torch.rand(shape, generator=g, device=dev, dtype=dt)
            log_r = math.log(_RESIZED_RATIO[0]), math.log(_RESIZED_RATIO[1])
            ratio = torch.exp(
                log_r[0]
                + (log_r[1] - log_r[0]) * torch.rand(shape, generator=g, device=dev, dtype=dt)
            )
            # Fractions of W and H such that fw * fh = area and the crop's pixel
            # aspect ratio (fw * W) / (fh * H) equals `ratio`.
            fw = torch.sqrt(area * ratio * h / w)
            fh = torch.sqrt(area * w / (ratio * h))
            ok = (fw <= 1.0) & (fh <= 1.0)
            # First valid candidate per sample; the whole image if none fits.
            first = torch.argmax(ok.to(torch.uint8), dim=1, keepdim=True)
            any_ok = ok.any(dim=1)
            one = torch.ones((), device=dev, dtype=dt)
            fw = torch.where(any_ok, fw.gather(1, first).squeeze(1), one)
            fh = torch.where(any_ok, fh.gather(1, first).squeeze(1), one)
            # Centre anywhere that keeps the crop inside the image.
            cx = (1.0 - fw) * (2.0 * torch.rand(b, generator=g, device=dev, dtype=dt) - 1.0)
            cy = (1.0 - fh) * (2.0 * torch.rand(b, generator=g, device=dev, dtype=dt) - 1.0)
            theta[:, 0, 0] = sign * fw
            theta[:, 1, 1] = fh
            theta[:, 0, 2] = cx
            theta[:, 1, 2] = cy
            # Border padding: samples within half a pixel of the edge must not
            # blend with zeros.
            mode, padding = "bilinear", "border"
        else:
            theta[:, 0, 0] = sign
            theta[:, 1, 1] = 1.0
            if self.crop == "pad":
                # One pixel is 2 / side in normalised coordinates (align_corners=False);
                # nearest sampling then makes this an exact integer shift.
                dx = torch.randint(-pad_w, pad_w + 1, (b,), generator=g, device=dev)
                dy = torch.randint(-pad_h, pad_h + 1, (b,), generator=g, device=dev)
                theta[:, 0, 2] = 2.0 * dx.to(dt) / w
                theta[:, 1, 2] = 2.0 * dy.to(dt) / h
            # Zeros padding: what a padded crop shows outside the image.
            mode, padding = "nearest", "zeros"

        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)

    # ---------------------------------------------------------------- colour
    def _color_jitter(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Brightness -> contrast -> saturation -> hue, on a per-sample mask."""
        bri, con, sat, hue = _jitter_strengths(self.color_jitter)
        rgb = x.shape[1] == 3
        if not rgb:
            sat = hue = 0.0  # meaningless on non-RGB data: skipped, not an error
        if self.color_jitter_p == 0 or bri == con == sat == hue == 0:
            return x
        b, dev, dt = x.shape[0], x.device, x.dtype
        apply = _bernoulli(b, self.color_jitter_p, g, dev)
        out = x
        if bri > 0:
            f = _uniform(b, max(0.0, 1.0 - bri), 1.0 + bri, g, dev).to(dt).view(b, 1, 1, 1)
            out = (out * f).clamp(0.0, 1.0)
        if con > 0:
            f = _uniform(b, max(0.0, 1.0 - con), 1.0 + con, g, dev).to(dt).view(b, 1, 1, 1)
            grey = _luma(out) if rgb else out
            mean = grey.mean(dim=(1, 2, 3), keepdim=True)
            out = (f * out + (1.0 - f) * mean).clamp(0.0, 1.0)
        if sat > 0:
            f = _uniform(b, max(0.0, 1.0 - sat), 1.0 + sat, g, dev).to(dt).view(b, 1, 1, 1)
            out = (f * out + (1.0 - f) * _luma(out)).clamp(0.0, 1.0)
        if hue > 0:
            angle = 2.0 * math.pi * _uniform(b, -hue, hue, g, dev).to(dt)
            out = self._rotate_hue(out, angle)
        return torch.where(apply.view(b, 1, 1, 1), out, x)

    @staticmethod
    def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """Rotate the YIQ chroma of each RGB image by ``angle`` radians."""
        dev, dt = x.device, x.dtype
        to_yiq = torch.tensor(_RGB_TO_YIQ, device=dev, dtype=dt)
        from_yiq = torch.tensor(_YIQ_TO_RGB, device=dev, dtype=dt)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros(angle.shape[0], 3, 3, device=dev, dtype=dt)
        rot[:, 0, 0] = 1.0  # luma unchanged
        rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
        rot[:, 2, 1], rot[:, 2, 2] = sin, cos
        mat = from_yiq @ rot @ to_yiq  # (B, 3, 3), one RGB->RGB map per sample
        return torch.einsum("bij,bjhw->bihw", mat, x).clamp(0.0, 1.0)

    def _grayscale(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Replace all three channels by the luma, on a per-sample mask."""
        if x.shape[1] != 3 or self.grayscale_p == 0:
            return x
        b = x.shape[0]
        apply = _bernoulli(b, self.grayscale_p, g, x.device)
        return torch.where(apply.view(b, 1, 1, 1), _luma(x).expand_as(x), x)

    # ----------------------------------------------------------------- blur
    def _blur(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Separable Gaussian blur with a per-sample sigma, on a per-sample mask."""
        if self.blur_p == 0:
            return x
        b, c, h, w = x.shape
        dev, dt = x.device, x.dtype
        apply = _bernoulli(b, self.blur_p, g, dev)
        lo, hi = (float(v) for v in self.blur_sigma)
        sigma = _uniform(b, lo, hi, g, dev)
        rh, rw = _blur_radius(h), _blur_radius(w)
        # Depthwise: every (sample, channel) plane is its own group, so each
        # sample gets its own kernel in a single conv call per axis.
        out = x.reshape(1, b * c, h, w)
        if rh > 0:
            k = _gaussian_kernels(sigma, rh, dt).repeat_interleave(c, dim=0)
            out = F.pad(out, (0, 0, rh, rh), mode="reflect")
            out = F.conv2d(out, k.view(b * c, 1, -1, 1), groups=b * c)
        if rw > 0:
            k = _gaussian_kernels(sigma, rw, dt).repeat_interleave(c, dim=0)
            out = F.pad(out, (rw, rw, 0, 0), mode="reflect")
            out = F.conv2d(out, k.view(b * c, 1, 1, -1), groups=b * c)
        out = out.reshape(b, c, h, w).clamp(0.0, 1.0)
        return torch.where(apply.view(b, 1, 1, 1), out, x)

    def _solarize(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Invert values ``>= 0.5``, on a per-sample mask."""
        if self.solarize_p == 0:
            return x
        b = x.shape[0]
        apply = _bernoulli(b, self.solarize_p, g, x.device).view(b, 1, 1, 1)
        return torch.where(apply & (x >= 0.5), 1.0 - x, x)


# ---------------------------------------------------------------- presets
_GEOMETRY_OFF: dict[str, Any] = {
    "color_jitter": None,
    "color_jitter_p": 0.0,
    "grayscale_p": 0.0,
    "blur_p": 0.0,
    "solarize_p": 0.0,
}
# Keyword arguments of the (weak, strong) augmenters of each preset.
_PRESET_KWARGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # MoBYv2AL design for RGB natural images (e.g. CIFAR).
    "natural": (
        {"crop": "pad", "pad_fraction": 0.125, "hflip": True, **_GEOMETRY_OFF},
        {
            "crop": "resized",
            "crop_scale": (0.2, 1.0),
            "hflip": True,
            "color_jitter": (0.4, 0.4, 0.2, 0.1),
            "color_jitter_p": 0.8,
            "grayscale_p": 0.2,
            "blur_p": 0.1,
            "blur_sigma": (0.1, 2.0),
            "solarize_p": 0.2,
        },
    ),
}
# Greyscale photographs (e.g. Fashion-MNIST): same values; the RGB-only ops
# are skipped automatically on one channel.
_PRESET_KWARGS["grayscale"] = _PRESET_KWARGS["natural"]
_PRESET_KWARGS["fashion_mnist"] = _PRESET_KWARGS["grayscale"]
# Glyphs: a mirrored 2 or 5 is another symbol, so no flips; gentler crops so
# that strokes are not cut away.
_PRESET_KWARGS["digits"] = (
    {**_PRESET_KWARGS["natural"][0], "hflip": False},
    {**_PRESET_KWARGS["natural"][1], "hflip": False, "crop_scale": (0.5, 1.0)},
)


def _build_preset(name: str) -> tuple[ViewAugmenter, ViewAugmenter]:
    weak, strong = _PRESET_KWARGS[name]
    return ViewAugmenter(**weak), ViewAugmenter(**strong)


#: Ready-made ``(weak, strong)`` augmenter pairs by name, for inspection.
#: :func:`get_view_pair` builds fresh instances, so changing one of these (or
#: of its results) does not leak into other users. ``"auto"`` is resolved by
#: :func:`get_view_pair` from the number of channels.
VIEW_PRESETS: dict[str, tuple[ViewAugmenter, ViewAugmenter]] = {
    name: _build_preset(name) for name in _PRESET_KWARGS
}

_VALID_NAMES = tuple(sorted([*_PRESET_KWARGS, "auto"]))


def get_view_pair(
    preset: str | Sequence[Callable[..., torch.Tensor]], n_channels: int
) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """Return the ``(weak, strong)`` view augmenters for a preset.

    Parameters
    ----------
    preset : str or (callable, callable)
        A preset name (case-insensitive): ``"natural"`` (RGB natural images),
        ``"grayscale"`` / ``"fashion_mnist"`` (one-channel photographs),
        ``"digits"`` (no horizontal flips, crop scale (0.5, 1)), or ``"auto"``
        (``"natural"`` when ``n_channels == 3``, else the ``"grayscale"``
        values without horizontal flips: nothing says that a one-channel
        image, a digit or a scan for instance, is mirror-symmetric; name
        ``"grayscale"`` or ``"fashion_mnist"`` to flip).
        A user-supplied pair of callables is returned unchanged.
    n_channels : int
        Number of image channels; used to resolve ``"auto"``. Colour
        operations that need RGB are skipped on other channel counts.

    Returns
    -------
    (weak, strong) : tuple of callables
        Fresh :class:`ViewAugmenter` instances for a preset name.

    Raises
    ------
    ValueError
        Unknown preset name (the message lists the valid names), or
        ``n_channels`` not a positive integer.
    TypeError
        ``preset`` is neither a string nor a pair of callables.
    """
    if isinstance(preset, str):
        try:
            check_integer(n_channels, "n_channels")
        except TypeError as error:  # documented as a ValueError, as the preset name is
            raise ValueError(str(error)) from None
        name = preset.strip().lower()
        if name == "auto":
            if n_channels == 3:
                name = "natural"
            else:
                weak, strong = _PRESET_KWARGS["grayscale"]
                return (
                    ViewAugmenter(**{**weak, "hflip": False}),
                    ViewAugmenter(**{**strong, "hflip": False}),
                )
        if name not in _PRESET_KWARGS:
            raise ValueError(
                f"unknown augmentation preset {preset!r}; valid names: {', '.join(_VALID_NAMES)}"
            )
        return _build_preset(name)
    if not isinstance(preset, (tuple, list)) or len(preset) != 2:
        raise TypeError(
            "preset must be a preset name or a (weak, strong) pair of callables, "
            f"got {type(preset).__name__}"
        )
    weak, strong = preset
    if not (callable(weak) and callable(strong)):
        raise TypeError("both elements of a (weak, strong) augmentation pair must be callable")
    return tuple(preset)  # type: ignore[return-value]
