"""The public API: every exported name resolves, and the command starts light."""

from __future__ import annotations

import subprocess
import sys

import moby_al_plugin


def test_every_public_name_resolves():
    for name in moby_al_plugin.__all__:
        assert getattr(moby_al_plugin, name) is not None, name
    assert sorted(dir(moby_al_plugin)) == sorted(moby_al_plugin.__all__)


def test_command_line_parser_does_not_import_torch():
    code = ("import sys; from moby_al_plugin.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
