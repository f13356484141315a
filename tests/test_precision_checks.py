"""A PRECISION the worker would refuse is a system check error with a hint (at
``manage.py check``, ``serve``, a deploy), not a failure of every embedding task."""

from __future__ import annotations

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from similarity.checks import check_precision


def _similarity(**overrides):
    from django.conf import settings

    return override_settings(SIMILARITY={**settings.SIMILARITY, **overrides})


@pytest.mark.parametrize(("precision", "device", "expected"), [
    ("bf16", "cpu", "similarity.E009"),
    ("INT8", "auto", "similarity.E009"),
    ("int8", "cuda", "similarity.E010"),
    ("int8", "mps", "similarity.E010"),
    ("fp16", "cpu", "similarity.E011"),
    ("fp16", "mps", "similarity.E011"),
])
def test_a_bad_precision_is_an_error_with_a_hint(precision, device, expected):
    with _similarity(PRECISION=precision, DEVICE=device):
        problems = check_precision()
    assert [p.id for p in problems] == [expected]
    assert isinstance(problems[0], Error)
    assert repr(precision) in problems[0].msg and problems[0].hint


def test_fp16_on_auto_device_is_a_warning_because_the_worker_decides():
    with _similarity(PRECISION="fp16", DEVICE="auto"):
        problems = check_precision()
    assert [(type(p), p.id) for p in problems] == [(Warning, "similarity.W002")]


@pytest.mark.parametrize(("precision", "device"), [
    (None, "auto"), (None, "cuda"), (None, "cpu"), ("fp32", "cuda"), ("fp32", "cpu"),
    ("int8", "cpu"), ("int8", "auto"), ("fp16", "cuda"),
])
def test_good_precisions_pass(precision, device):
    with _similarity(PRECISION=precision, DEVICE=device):
        assert check_precision() == []


def test_manage_py_check_refuses_a_bad_precision():
    with _similarity(PRECISION="int4"), pytest.raises(SystemCheckError, match=r"similarity\.E009"):
        call_command("check")
