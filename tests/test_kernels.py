"""convkit.kernels.parse_kernels: presets, inline matrices, kernel files, and every way a
kernel argument can be malformed (each a KernelError whose message names the problem)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from convkit.errors import KernelError, UsageError
from convkit.image.kernels import Kernel, list_presets, parse_kernels, preset_names

FIXED_PRESETS = [
    "identity",
    "sobel-x",
    "sobel-y",
    "scharr-x",
    "scharr-y",
    "prewitt-x",
    "prewitt-y",
    "laplacian",
    "laplacian-diag",
    "sharpen",
    "emboss",
    "outline",
]
ZERO_SUM = {
    "sobel-x",
    "sobel-y",
    "scharr-x",
    "scharr-y",
    "prewitt-x",
    "prewitt-y",
    "laplacian",
    "laplacian-diag",
    "outline",
}


def one(arg, **kw) -> Kernel:
    kernels = parse_kernels(arg, **kw)
    assert len(kernels) == 1, kernels
    return kernels[0]


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", FIXED_PRESETS)
def test_every_fixed_preset_parses(name):
    k = one(name)
    assert k.name == name
    assert k.matrix.shape == (3, 3)
    assert k.matrix.dtype == np.float64
    assert np.isfinite(k.matrix).all()
    assert k.is_zero_sum == (name in ZERO_SUM)
    # case and surrounding blanks do not matter
    np.testing.assert_array_equal(one(f"  {name.upper()} ").matrix, k.matrix)


def test_required_presets_are_listed():
    names = preset_names()
    for name in [*FIXED_PRESETS, "edges4"]:
        assert name in names
    assert any(n.startswith("box:") for n in names)
    assert any(n.startswith("gaussian:") for n in names)
    listed = {row[0] for row in list_presets()}
    for name in FIXED_PRESETS:
        assert name in listed
    for _name, description, matrices in list_presets():
        assert description.strip()
        assert matrices and all(np.asarray(m).ndim == 2 for m in matrices)


def test_preset_matrices_are_copies():
    k = one("sobel-x")
    k.matrix[0, 0] = 99
    assert one("sobel-x").matrix[0, 0] == -1


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 25])
def test_box_n(n):
    k = one(f"box:{n}")
    assert k.matrix.shape == (n, n)
    np.testing.assert_allclose(k.matrix, 1.0 / n**2)
    assert k.matrix.sum() == pytest.approx(1.0)
    assert not k.is_zero_sum
    assert "/" not in k.name and ":" not in k.name  # safe in a file name
    assert str(n) in k.name


@pytest.mark.parametrize(
    "arg,size,sigma",
    [
        ("gaussian:3", 3, None),
        ("gaussian:7:1.5", 7, 1.5),
        ("gaussian:5:0.8", 5, 0.8),
        ("gaussian:11", 11, None),
    ],
)
def test_gaussian_n_sigma(arg, size, sigma):
    k = one(arg)
    m = k.matrix
    assert m.shape == (size, size)
    assert m.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(m, m.T, atol=1e-15)  # isotropic
    np.testing.assert_allclose(m, m[::-1, ::-1], atol=1e-15)
    assert m.argmax() == (size * size) // 2  # peak in the centre
    if sigma is not None:
        x = np.arange(size) - (size - 1) / 2
        g = np.exp(-(x**2) / (2 * sigma**2))
        g /= g.sum()
        np.testing.assert_allclose(m, np.outer(g, g), atol=1e-12)
    assert ":" not in k.name


def test_gaussian_sigma_changes_the_kernel():
    assert not np.allclose(one("gaussian:7:1").matrix, one("gaussian:7:3").matrix)
    assert one("gaussian:7:1").name != one("gaussian:7:3").name


def test_edges4_gives_four_kernels():
    kernels = parse_kernels("edges4")
    assert len(kernels) == 4
    assert len({k.name for k in kernels}) == 4
    for k in kernels:
        assert k.matrix.shape == (4, 4)
        assert k.is_zero_sum


# --------------------------------------------------------------------------- inline matrices


@pytest.mark.parametrize(
    "text",
    [
        "1,0,1;0,1,0;1,0,1",
        "1 0 1; 0 1 0; 1 0 1",
        " 1, 0, 1 ;0,1,0 ; 1 ,0, 1 ",
        "1,0,1;0,1,0;1,0,1;",
        "1.0,0e0,1;0,1.,0;+1,-0,1",
        "1\t0\t1;0 1 0;1, 0, 1",
    ],
)
def test_inline_matrix(text):
    k = one(text)
    np.testing.assert_array_equal(k.matrix, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    assert k.matrix.dtype == np.float64


def test_inline_matrix_values_and_names():
    k = one("-1,0,1;-2,0,2;-1,0,1", position=3)
    np.testing.assert_array_equal(k.matrix, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert k.is_zero_sum
    assert k.name == "kernel3"
    np.testing.assert_allclose(one("1e-1, 2.5e1; -3, .5").matrix, [[0.1, 25], [-3, 0.5]])
    assert one("1,2,3").matrix.shape == (1, 3)  # one row is a 1xN kernel
    assert one("1;2;3").matrix.shape == (3, 1)
    assert one("7").matrix.shape == (1, 1)


# --------------------------------------------------------------------------- files


def test_txt_file(tmp_path):
    path = tmp_path / "my kernel.txt"
    path.write_text("# a comment line\n1 2 3\n4 5 6  # trailing comment\n\n7 8 9\n")
    k = one(str(path))
    np.testing.assert_array_equal(k.matrix, np.arange(1, 10).reshape(3, 3))
    assert "/" not in k.name and " " not in k.name
    assert "my" in k.name and "kernel" in k.name


def test_csv_file(tmp_path):
    path = tmp_path / "edge.csv"
    path.write_text("-1,0,1\n-2,0,2\n-1,0,1\n")
    k = one(str(path))
    assert k.name == "edge"
    np.testing.assert_array_equal(k.matrix, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int8, np.uint8])
def test_npy_file(tmp_path, dtype):
    want = np.arange(12).reshape(3, 4).astype(dtype)
    path = tmp_path / "k.npy"
    np.save(path, want)
    k = one(str(path))
    assert k.name == "k"
    assert k.matrix.dtype == np.float64
    np.testing.assert_array_equal(k.matrix, want.astype(np.float64))


def test_npy_fortran_order(tmp_path):
    want = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    np.save(tmp_path / "f.npy", want)
    np.testing.assert_array_equal(one(str(tmp_path / "f.npy")).matrix, want)


# --------------------------------------------------------------------------- malformed


def kernel_error(arg) -> str:
    with pytest.raises(KernelError) as info:
        parse_kernels(arg)
    assert isinstance(info.value, UsageError)
    assert info.value.exit_code == 2
    return str(info.value)


@pytest.mark.parametrize("arg", ["1,2;3", "1,2,3;4,5", "1 2;3 4 5;6 7", "1,2\n3"])
def test_ragged_rows(arg):
    assert "ragged" in kernel_error(arg).lower()


@pytest.mark.parametrize(
    "arg,bad", [("1,a;2,3", "a"), ("1,x,3;4,5,6", "x"), ("1,2,three", "three"), ("1,2;3,4q", "4q")]
)
def test_non_numbers(arg, bad):
    message = kernel_error(arg)
    assert "not a number" in message.lower(), message
    assert repr(bad) in message or f'"{bad}"' in message, message


@pytest.mark.parametrize("arg", ["", "   ", "\t"])
def test_empty_argument(arg):
    assert "empty" in kernel_error(arg).lower()


@pytest.mark.parametrize("arg", ["1,nan;0,1", "inf,1", "1,-inf", "NaN", "1e400,1"])
def test_nan_or_inf_inline(arg):
    message = kernel_error(arg).lower()
    assert "nan" in message or "inf" in message


def test_empty_text_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("# only a comment\n\n")
    message = kernel_error(str(path))
    assert "empty" in message.lower()
    assert str(path) in message


def test_empty_csv_file(tmp_path):
    path = tmp_path / "nothing.csv"
    path.write_text("")
    assert "empty" in kernel_error(str(path)).lower()


def test_text_file_problems(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3\n4,5\n")
    message = kernel_error(str(ragged))
    assert "ragged" in message.lower() and str(ragged) in message
    words = tmp_path / "words.txt"
    words.write_text("1 2\nthree 4\n")
    message = kernel_error(str(words))
    assert "'three'" in message and "not a number" in message
    nan = tmp_path / "nan.txt"
    nan.write_text("1 nan\n0 1\n")
    assert "nan" in kernel_error(str(nan)).lower()
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    assert "text" in kernel_error(str(binary)).lower()


def test_missing_kernel_file(tmp_path):
    path = tmp_path / "nope.npy"
    message = kernel_error(str(path))
    assert str(path) in message
    assert "no such" in message.lower() or "not found" in message.lower()


@pytest.mark.parametrize("shape", [(2, 2, 2), (3, 3, 1), (1, 2, 3, 4)])
def test_npy_more_than_two_dimensions(tmp_path, shape):
    path = tmp_path / "cube.npy"
    np.save(path, np.ones(shape))
    message = kernel_error(str(path))
    assert "2-d" in message.lower()
    assert str(len(shape)) in message


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0,)])
def test_npy_empty(tmp_path, shape):
    path = tmp_path / "empty.npy"
    np.save(path, np.ones(shape))
    assert "empty" in kernel_error(str(path)).lower()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_npy_nan_inf(tmp_path, value):
    path = tmp_path / "bad.npy"
    m = np.ones((3, 3))
    m[1, 2] = value
    np.save(path, m)
    message = kernel_error(str(path)).lower()
    assert "nan" in message or "inf" in message


def test_npy_strings_and_complex_refused(tmp_path):
    strings = tmp_path / "s.npy"
    np.save(strings, np.array([["a", "b"], ["c", "d"]]))
    assert "number" in kernel_error(str(strings)).lower()


def test_npy_not_really_npy(tmp_path):
    path = tmp_path / "fake.npy"
    path.write_bytes(b"this is not numpy data at all")
    message = kernel_error(str(path))
    assert str(path) in message


class _Trap:
    """Unpickling this creates ``marker``: proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickled_npy_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "UNPICKLED"
    path = tmp_path / "evil.npy"
    payload = np.empty((2, 2), dtype=object)
    payload[:] = [[_Trap(marker), 1], [2, 3]]
    np.save(path, payload, allow_pickle=True)

    # the trap is armed: loading it with pickles allowed does run code
    armed = tmp_path / "ARMED"
    armed_path = tmp_path / "armed.npy"
    payload[0, 0] = _Trap(armed)
    np.save(armed_path, payload, allow_pickle=True)
    np.load(armed_path, allow_pickle=True)
    assert armed.exists()

    message = kernel_error(str(path))
    assert not marker.exists(), "convkit unpickled a kernel file"
    assert str(path) in message
    assert any(word in message.lower() for word in ("pickle", "object", "numeric")), message


def test_object_npy_without_pickled_code_is_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([[1, 2], [3, 4]], dtype=object), allow_pickle=True)
    assert str(path) in kernel_error(str(path))


@pytest.mark.parametrize(
    "arg,suggestion",
    [
        ("sobelx", "sobel-x"),
        ("sobel_y", "sobel-y"),
        ("lapalcian", "laplacian"),
        ("edge4", "edges4"),
        ("sharpn", "sharpen"),
        ("gausian:5", "gaussian"),
        ("scharrx", "scharr-x"),
    ],
)
def test_unknown_name_suggests_closest_preset(arg, suggestion):
    message = kernel_error(arg)
    assert "unknown kernel" in message.lower()
    assert repr(arg) in message
    assert f"'{suggestion}" in message, message


@pytest.mark.parametrize("arg,usage", [("box", "box:N"), ("gaussian", "gaussian:N")])
def test_parametric_name_without_size_says_how(arg, usage):
    """`-k box` must point at box:N, not suggest 'box' back to the user."""
    message = kernel_error(arg)
    assert usage in message, message


def test_unknown_name_without_close_match_points_to_list():
    message = kernel_error("zebra-stripes")
    assert "list-kernels" in message


@pytest.mark.parametrize(
    "arg,fragment",
    [
        ("box:0", "between"),
        ("box:-3", "between"),
        ("box:x", "box:N"),
        ("box:3:2", "box:N"),
        ("gaussian:4", "odd"),
        ("gaussian:5:nan", "finite"),
        ("gaussian:5:inf", "finite"),
        ("gaussian:5:1:2", "gaussian:N"),
        ("gaussian:x", "gaussian:N"),
        ("box:100000", "between"),
    ],
)
def test_bad_parametric(arg, fragment):
    message = kernel_error(arg)
    assert repr(arg) in message or arg in message
    if fragment:
        assert fragment in message, message
