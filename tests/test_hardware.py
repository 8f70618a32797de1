"""Precision and threads: resolution, autocast, the thread setting, and bf16 fits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from moby_al_plugin import MoBYEncoder, k_center_greedy
from moby_al_plugin.hardware import (
    PRECISIONS,
    _warn_no_bf16,
    autocast,
    bf16_supported,
    check_n_threads,
    resolve_precision,
    thread_report,
    torch_threads,
)
from moby_al_plugin.network import info_nce

from .conftest import small_encoder, small_net


def _cpu_capability(monkeypatch, bf16: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    _warn_no_bf16.cache_clear()


# ------------------------------------------------------------------ precision
def test_auto_resolves_to_this_cpus_native_support():
    import pathlib

    flags = pathlib.Path("/proc/cpuinfo")
    if flags.exists() and " avx512_bf16" in flags.read_text():
        assert bf16_supported("cpu")
    expected = "bf16" if bf16_supported("cpu") else "fp32"
    assert resolve_precision("auto", "cpu") == expected


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_capability(monkeypatch, native, expected):
    _cpu_capability(monkeypatch, native)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_bf16_without_native_support_warns_once_then_fp32(monkeypatch):
    _cpu_capability(monkeypatch, False)
    with pytest.warns(RuntimeWarning, match="no native bfloat16"):
        assert resolve_precision("bf16", "cpu") == "fp32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call is silent
        assert resolve_precision("bf16", "cpu") == "fp32"
    _warn_no_bf16.cache_clear()


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", None, 16, "float32"])
def test_unknown_precision_names_the_valid_ones(bad):
    with pytest.raises(ValueError, match="unknown precision") as info:
        resolve_precision(bad)
    for name in PRECISIONS:
        assert repr(name) in str(info.value)


def test_autocast_runs_products_in_bfloat16_only_for_bf16():
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast("bf16", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert layer(x).dtype == torch.float32


def test_contrastive_loss_stays_float32_under_autocast():
    generator = torch.Generator().manual_seed(0)
    q, k = (torch.nn.functional.normalize(torch.randn(8, 16, generator=generator), dim=1),) * 2
    queue = torch.nn.functional.normalize(torch.randn(16, 32, generator=generator), dim=0)
    reference = info_nce(q, k, queue, 0.2)
    with autocast("bf16", "cpu"):
        mixed = info_nce(q, k, queue, 0.2)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference)


# -------------------------------------------------------------------- threads
def test_torch_threads_sets_then_restores():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other) as n:
        assert n == other and torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with torch_threads(None) as n:
        assert n == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_named(bad):
    with pytest.raises(ValueError, match="n_threads"):
        check_n_threads(bad)


def test_thread_report_names_the_environment_when_it_limits(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr("moby_al_plugin.hardware.available_cores", lambda: 4)
    with torch_threads(1):
        line = thread_report()
    assert "1 torch thread of 4 cores" in line and "OMP_NUM_THREADS=1" in line
    assert "(asked for)" in thread_report(1)


class _ThreadProbe(Callback):
    def on_batch_begin(self, net, **kwargs):
        self.seen = torch.get_num_threads()


def test_n_threads_reaches_torch_during_the_fit(tiny_digits):
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    probe = _ThreadProbe()
    net = small_net(max_epochs=1, n_threads=wanted, callbacks=[("probe", probe)])
    net.fit(tiny_digits["X"], tiny_digits["y"])
    assert probe.seen == wanted
    assert torch.get_num_threads() == before


def test_bad_settings_are_refused_before_training(tiny_digits):
    for params, match in [
        ({"precision": "half"}, "unknown precision"),
        ({"n_threads": 0}, "n_threads"),
    ]:
        net = small_net(**params)
        with pytest.raises(ValueError, match=match):
            net.fit(tiny_digits["X"], tiny_digits["y"])
        assert not getattr(net, "initialized_", False)
        with pytest.raises(ValueError, match=match):
            MoBYEncoder(max_epochs=1, queue_size=64, **params).fit(tiny_digits["X_pool"])


# --------------------------------------------------------------- bf16 fits
@pytest.fixture(scope="module")
def bf16_here():
    if not bf16_supported("cpu"):
        pytest.skip("this CPU has no native bfloat16")


def test_bf16_fit_trains_on_the_digits(bf16_here, tiny_digits):
    net = small_net(
        precision="bf16", contrastive_weight=0.0, max_epochs=6, lr=0.05, lr_schedule="cosine"
    )
    net.fit(tiny_digits["X"], tiny_digits["y"])
    assert net.precision_ == "bf16"
    losses = net.history[:, "train_loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert net.score(tiny_digits["X_test"], tiny_digits["y_test"]) > 0.5
    proba = net.predict_proba(tiny_digits["X_test"])
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_bf16_and_fp32_inference_agree_and_pick_the_same(bf16_here, tiny_digits):
    net = small_net(precision="fp32", max_epochs=4, lr=0.05)
    net.fit(tiny_digits["X"], tiny_digits["y"])
    fp32_features = net.transform(tiny_digits["X_pool"])
    fp32_labels = net.predict(tiny_digits["X_test"])
    net.set_params(precision="bf16")
    bf16_features = net.transform(tiny_digits["X_pool"])
    assert bf16_features.dtype == np.float32
    scale = np.abs(fp32_features).max()
    assert np.abs(bf16_features - fp32_features).max() < 0.05 * scale
    assert np.mean(net.predict(tiny_digits["X_test"]) == fp32_labels) > 0.95
    # well-separated candidates: the farthest-first picks do not depend on the precision
    labelled = net.transform(tiny_digits["X"][:20])
    picks = [
        k_center_greedy(f, 5, initial_centers=labelled) for f in (fp32_features, bf16_features)
    ]
    assert list(picks[0]) == list(picks[1])


def test_bf16_encoder_fit_and_transform(bf16_here, tiny_digits):
    encoder = small_encoder(precision="bf16").fit(tiny_digits["X_pool"])
    assert encoder.precision_ == "bf16"
    assert np.isfinite(encoder.history_[-1]["loss"])
    features = encoder.transform(tiny_digits["X_test"])
    assert features.dtype == np.float32 and np.isfinite(features).all()
