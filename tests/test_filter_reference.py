"""convkit.ops.filter2d, convkit.render.to_pixels and the kernel presets against independent
references: SciPy's ``ndimage.correlate``/``convolve`` in float64, NumPy formulas, and
OpenCV's own documented functions (``getDerivKernels``, ``getGaussianKernel``, ``Sobel``,
``filter2D`` with ``ddepth=-1``, ``convertScaleAbs``).

Border modes, OpenCV name -> SciPy name:

* reflect101 (``gfedcb|abcdefgh|gfedcba``) -> ``mirror``
* reflect    (``fedcba|abcdefgh|hgfedcb``) -> ``reflect``
* replicate  (``aaaaaa|abcdefgh|hhhhhhh``) -> ``nearest``
* constant   (zeros)                       -> ``constant`` with ``cval=0``

Anchor of even-sized kernels: OpenCV's default anchor is ``(ksize.width // 2,
ksize.height // 2)``, i.e. for a 4-tap kernel ``k0 k1 k2 k3`` the output at ``x`` is
``k0*I[x-2] + k1*I[x-1] + k2*I[x] + k3*I[x+1]``. SciPy's ``correlate`` puts the kernel centre
at ``size // 2 + origin``, so ``origin=0`` is the same anchor for odd *and* even sizes
(``test_even_kernel_anchor_is_size_floordiv_2`` checks that on an impulse, without SciPy).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ndi = pytest.importorskip("scipy.ndimage")
cv2 = pytest.importorskip("cv2")

from convkit.image.kernels import parse_kernels  # noqa: E402
from convkit.image.ops import filter2d  # noqa: E402
from convkit.image.pixels import to_pixels  # noqa: E402

BORDERS = {
    "reflect101": "mirror",
    "reflect": "reflect",
    "replicate": "nearest",
    "constant": "constant",
}
CV_BORDERS = {
    "reflect101": "BORDER_REFLECT_101",
    "reflect": "BORDER_REFLECT",
    "replicate": "BORDER_REPLICATE",
    "constant": "BORDER_CONSTANT",
}

# (kh, kw): odd, even, mixed, 1-wide, and large ones that take OpenCV's DFT path
# (filter2D switches to a DFT-based correlation for kernels of about 11x11 and more).
KERNEL_SHAPES = [
    (3, 3),
    (5, 5),
    (2, 2),
    (4, 4),
    (2, 5),
    (1, 4),
    (6, 3),
    (11, 11),
    (15, 15),
    (21, 21),
    (9, 17),
    (12, 7),
]


def rel_tol(kernel: np.ndarray, scale: float) -> float:
    """1e-4 of the largest possible response (L1 norm of the kernel times the pixel scale)."""
    return 1e-4 * float(np.abs(kernel).sum()) * scale


def reference(image: np.ndarray, kernel: np.ndarray, border: str, *, convolve=False):
    """float64 SciPy reference, per channel for colour images."""
    func = ndi.convolve if convolve else ndi.correlate
    img = image.astype(np.float64)
    mode = BORDERS[border]
    if img.ndim == 2:
        return func(img, kernel, mode=mode, cval=0.0)
    return np.stack(
        [func(img[:, :, c], kernel, mode=mode, cval=0.0) for c in range(img.shape[2])], axis=2
    )


def rng(seed):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- filter2d


@pytest.mark.parametrize("border", list(BORDERS))
@pytest.mark.parametrize("kshape", KERNEL_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_filter2d_uint8_matches_scipy_correlate(border, kshape):
    r = rng(zlib.crc32(f"{border}{kshape}".encode()))
    image = r.integers(0, 256, size=(37, 45), dtype=np.uint8)
    kernel = r.normal(size=kshape)
    got = filter2d(image, kernel, border=border)
    assert got.dtype == np.float32
    assert got.shape == image.shape
    want = reference(image, kernel, border)
    np.testing.assert_allclose(got, want, rtol=0, atol=rel_tol(kernel, 255))


@pytest.mark.parametrize("border", list(BORDERS))
@pytest.mark.parametrize("kshape", [(3, 3), (4, 4), (15, 15), (8, 13)], ids=str)
def test_filter2d_float_image_matches_scipy_correlate(border, kshape):
    r = rng(7 + len(border) + kshape[0])
    image = (r.random((33, 41)) * 255).astype(np.float32)  # non-integer pixel values
    kernel = r.uniform(-2, 2, size=kshape)
    got = filter2d(image, kernel, border=border)
    want = reference(image, kernel, border)
    np.testing.assert_allclose(got, want, rtol=0, atol=rel_tol(kernel, 255))


@pytest.mark.parametrize("border", list(BORDERS))
@pytest.mark.parametrize("kshape", [(3, 3), (4, 6), (21, 21)], ids=str)
def test_filter2d_uint16_matches_scipy_correlate(border, kshape):
    r = rng(11 + kshape[1])
    image = r.integers(0, 65536, size=(30, 34), dtype=np.uint16)
    kernel = r.normal(size=kshape)
    got = filter2d(image, kernel, border=border)
    want = reference(image, kernel, border)
    np.testing.assert_allclose(got, want, rtol=0, atol=rel_tol(kernel, 65535))


@pytest.mark.parametrize("border", list(BORDERS))
@pytest.mark.parametrize("kshape", [(3, 3), (4, 4), (15, 15)], ids=str)
def test_filter2d_colour_is_per_channel(border, kshape):
    r = rng(3 + kshape[0])
    image = r.integers(0, 256, size=(26, 31, 3), dtype=np.uint8)
    kernel = r.normal(size=kshape)
    got = filter2d(image, kernel, border=border)
    assert got.shape == image.shape
    want = reference(image, kernel, border)
    np.testing.assert_allclose(got, want, rtol=0, atol=rel_tol(kernel, 255))


@pytest.mark.parametrize("border", list(BORDERS))
@pytest.mark.parametrize(
    "size,kshape",
    [((8, 9), (21, 21)), ((5, 5), (15, 15)), ((1, 30), (3, 3)), ((30, 1), (3, 5))],
    ids=str,
)
def test_filter2d_kernel_larger_than_image(border, size, kshape):
    r = rng(5)
    image = r.integers(0, 256, size=size, dtype=np.uint8)
    kernel = r.normal(size=kshape)
    got = filter2d(image, kernel, border=border)
    want = reference(image, kernel, border)
    np.testing.assert_allclose(got, want, rtol=0, atol=rel_tol(kernel, 255))


@pytest.mark.parametrize("border", list(BORDERS))
@pytest.mark.parametrize("kshape", [(3, 3), (4, 4), (2, 5), (15, 15), (12, 7)], ids=str)
def test_filter2d_convolve_matches_scipy_convolve(border, kshape):
    r = rng(17 + kshape[0] * kshape[1])
    image = r.integers(0, 256, size=(29, 36), dtype=np.uint8)
    kernel = r.normal(size=kshape)
    got = filter2d(image, kernel, border=border, convolve=True)
    want = reference(image, kernel, border, convolve=True)
    np.testing.assert_allclose(got, want, rtol=0, atol=rel_tol(kernel, 255))
    # and, for an asymmetric kernel, convolution really is different from correlation
    corr = reference(image, kernel, border)
    assert np.abs(corr - want).max() > 1.0


def test_correlation_not_convolution_on_an_impulse():
    """filter2D applies the kernel as written: an impulse comes out as the kernel flipped."""
    image = np.zeros((9, 9), np.float32)
    image[4, 4] = 1
    kernel = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
    got = filter2d(image, kernel, border="constant")
    np.testing.assert_allclose(got[3:6, 3:6], kernel[::-1, ::-1], atol=1e-6)
    conv = filter2d(image, kernel, border="constant", convolve=True)
    np.testing.assert_allclose(conv[3:6, 3:6], kernel, atol=1e-6)


@pytest.mark.parametrize("kshape", [(4, 4), (2, 6), (6, 2), (1, 2)], ids=str)
def test_even_kernel_anchor_is_size_floordiv_2(kshape):
    """out(y, x) = sum k(i, j) * I(y + i - kh//2, x + j - kw//2), checked on an impulse by hand."""
    kh, kw = kshape
    image = np.zeros((11, 13), np.float32)
    py, px = 5, 6
    image[py, px] = 1
    kernel = rng(1).uniform(1, 2, size=kshape)
    got = filter2d(image, kernel, border="constant")
    want = np.zeros_like(image, dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            # I(y + i - ay, x + j - ax) is the impulse when y = py - i + ay, x = px - j + ax
            want[py - i + kh // 2, px - j + kw // 2] += kernel[i, j]
    np.testing.assert_allclose(got, want, atol=1e-6)
    # ... which is SciPy's correlate with origin 0
    np.testing.assert_allclose(got, reference(image, kernel, "constant"), atol=1e-6)


@pytest.mark.parametrize("border", list(BORDERS))
def test_normalize_divides_by_kernel_sum(border):
    r = rng(23)
    image = r.integers(0, 256, size=(25, 27), dtype=np.uint8)
    kernel = r.uniform(0.5, 3.0, size=(5, 5))
    got = filter2d(image, kernel, border=border, normalize=True)
    want = reference(image, kernel / kernel.sum(), border)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * 255)
    # a box of ones normalized is a mean filter: flat stays flat
    flat = np.full((10, 12), 77, np.uint8)
    if border != "constant":  # zeros beyond the edge darken the rim
        np.testing.assert_allclose(
            filter2d(flat, np.ones((3, 3)), border=border, normalize=True), 77, atol=1e-4
        )


def test_normalize_leaves_zero_sum_kernels_alone():
    r = rng(29)
    image = r.integers(0, 256, size=(20, 22), dtype=np.uint8)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)
    got = filter2d(image, sobel_x, normalize=True)
    want = reference(image, sobel_x, "reflect101")
    np.testing.assert_allclose(got, want, atol=1e-3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    kh=st.integers(1, 13),
    kw=st.integers(1, 13),
    border=st.sampled_from(list(BORDERS)),
    convolve=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_filter2d_property_matches_scipy(h, w, kh, kw, border, convolve, seed):
    r = rng(seed)
    image = r.integers(0, 256, size=(h, w), dtype=np.uint8)
    kernel = r.normal(size=(kh, kw))
    got = filter2d(image, kernel, border=border, convolve=convolve)
    want = reference(image, kernel, border, convolve=convolve)
    np.testing.assert_allclose(got, want, rtol=0, atol=rel_tol(kernel, 255))


# --------------------------------------------------------------------------- to_pixels


def test_clip_equals_opencv_saturate_cast_on_ties():
    """clip is OpenCV's saturate_cast: round half to even, then saturate."""
    values = np.array(
        [[0.5, 1.5, 2.5, 3.5, -0.5, -0.49, -1.5, 127.5, 254.5, 255.5, 300.0, -3.0, 0.49999]],
        np.float32,
    )
    # OpenCV's arithmetic with an explicit integer dtype ends in saturate_cast
    want = cv2.add(values, np.zeros_like(values), dtype=cv2.CV_8U)
    np.testing.assert_array_equal(to_pixels(values, "clip"), want)
    np.testing.assert_array_equal(
        to_pixels(values, "clip"), [[0, 2, 2, 4, 0, 0, 0, 128, 254, 255, 255, 0, 0]]
    )
    want16 = cv2.add(values, np.zeros_like(values), dtype=cv2.CV_16U)
    np.testing.assert_array_equal(to_pixels(values, "clip", np.uint16), want16)


@pytest.mark.parametrize(
    "name",
    [
        "sobel-x",
        "sobel-y",
        "laplacian",
        "sharpen",
        "emboss",
        "box:3",
        "box:4",
        "gaussian:5",
        "box:15",
        "gaussian:21",
        "1,2,-1;0.5,-3,1;0,1,0.25",
    ],
)
@pytest.mark.parametrize("border", list(BORDERS))
def test_clip_equals_filter2d_ddepth_minus1_uint8(name, border):
    kernel = parse_kernels(name)[0].matrix
    r = rng(31)
    for image in (
        r.integers(0, 256, size=(40, 52), dtype=np.uint8),
        r.integers(0, 256, size=(33, 29, 3), dtype=np.uint8),
    ):
        want = cv2.filter2D(
            image, -1, kernel.astype(np.float32), borderType=getattr(cv2, CV_BORDERS[border])
        )
        got = to_pixels(filter2d(image, kernel, border=border), "clip", np.uint8)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["sobel-x", "sharpen", "box:3", "gaussian:5", "box:15"])
def test_clip_uint16_matches_filter2d_ddepth_minus1(name):
    """16-bit: equal to ddepth=-1 up to one grey level (float32 has ~1/256 resolution at 65535,
    so a value within that of .5 may round either way on the two code paths)."""
    kernel = parse_kernels(name)[0].matrix
    image = rng(37).integers(0, 65536, size=(40, 44), dtype=np.uint16)
    want = cv2.filter2D(image, -1, kernel.astype(np.float32))
    got = to_pixels(filter2d(image, kernel), "clip", np.uint16)
    assert got.dtype == np.uint16
    assert np.abs(got.astype(np.int64) - want).max() <= 1


def test_abs_matches_convert_scale_abs_and_numpy():
    r = rng(41)
    response = (r.normal(size=(30, 30)) * 200).astype(np.float32)
    response[0, :6] = [0.5, -0.5, 1.5, -1.5, 255.5, -300]
    got = to_pixels(response, "abs")
    # convertScaleAbs: saturate_cast<uchar>(|src|)
    np.testing.assert_array_equal(got, cv2.convertScaleAbs(response))
    want = np.clip(np.rint(np.abs(response.astype(np.float64))), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(got, want)


def test_abs_uint16_numpy_formula():
    response = (rng(43).normal(size=(20, 25)) * 40000).astype(np.float32)
    got = to_pixels(response, "abs", np.uint16)
    assert got.dtype == np.uint16
    want = np.clip(np.rint(np.abs(response.astype(np.float64))), 0, 65535)
    assert np.abs(got.astype(np.float64) - want).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_rescale_maps_min_max_to_full_range(dtype):
    response = (rng(47).normal(size=(31, 17)) * 123.4 - 50).astype(np.float32)
    top = np.iinfo(dtype).max
    got = to_pixels(response, "rescale", dtype)
    assert got.dtype == dtype
    r64 = response.astype(np.float64)
    want = np.rint((r64 - r64.min()) / (r64.max() - r64.min()) * top)
    assert np.abs(got.astype(np.float64) - want).max() <= 1
    assert got.min() == 0 and got.max() == top
    assert got[np.unravel_index(response.argmin(), response.shape)] == 0
    assert got[np.unravel_index(response.argmax(), response.shape)] == top


def test_rescale_flat_response_is_zero():
    got = to_pixels(np.full((4, 5), 3.25, np.float32), "rescale")
    np.testing.assert_array_equal(got, np.zeros((4, 5), np.uint8))


def test_to_pixels_colour_shape_kept():
    response = rng(53).normal(size=(6, 7, 3)).astype(np.float32) * 300
    for mode in ("clip", "abs", "rescale"):
        out = to_pixels(response, mode)
        assert out.shape == (6, 7, 3) and out.dtype == np.uint8


# --------------------------------------------------------------------------- presets


def single(name):
    kernels = parse_kernels(name)
    assert len(kernels) == 1
    return kernels[0].matrix


def deriv_kernel(dx, dy, ksize):
    kx, ky = cv2.getDerivKernels(dx, dy, ksize)
    return np.outer(ky.ravel(), kx.ravel())  # rows follow y, columns follow x


def test_sobel_and_scharr_presets_equal_opencv_deriv_kernels():
    np.testing.assert_array_equal(single("sobel-x"), deriv_kernel(1, 0, 3))
    np.testing.assert_array_equal(single("sobel-y"), deriv_kernel(0, 1, 3))
    np.testing.assert_array_equal(single("scharr-x"), deriv_kernel(1, 0, cv2.FILTER_SCHARR))
    np.testing.assert_array_equal(single("scharr-y"), deriv_kernel(0, 1, cv2.FILTER_SCHARR))


@pytest.mark.parametrize("border", list(BORDERS))
def test_sobel_preset_filter_equals_cv2_sobel(border):
    """sobel-x responds to intensity rising left to right, exactly as cv2.Sobel(dx=1)."""
    image = rng(59).integers(0, 256, size=(28, 33), dtype=np.uint8)
    flag = getattr(cv2, CV_BORDERS[border])
    for name, (dx, dy) in {"sobel-x": (1, 0), "sobel-y": (0, 1)}.items():
        want = cv2.Sobel(image, cv2.CV_32F, dx, dy, ksize=3, borderType=flag)
        np.testing.assert_allclose(filter2d(image, single(name), border=border), want, atol=1e-3)
    for name, (dx, dy) in {"scharr-x": (1, 0), "scharr-y": (0, 1)}.items():
        want = cv2.Scharr(image, cv2.CV_32F, dx, dy, borderType=flag)
        np.testing.assert_allclose(filter2d(image, single(name), border=border), want, atol=1e-3)
    ramp = np.tile(np.arange(10, dtype=np.uint8) * 10, (6, 1))
    assert (filter2d(ramp, single("sobel-x"))[:, 1:-1] > 0).all()


def test_laplacian_presets():
    image = rng(61).integers(0, 256, size=(21, 23), dtype=np.uint8)
    # cv2.Laplacian with ksize=1 is the 4-neighbour kernel [[0,1,0],[1,-4,1],[0,1,0]]
    np.testing.assert_allclose(
        filter2d(image, single("laplacian")), cv2.Laplacian(image, cv2.CV_32F, ksize=1), atol=1e-3
    )
    diag = np.ones((3, 3))
    diag[1, 1] = -8
    np.testing.assert_array_equal(single("laplacian-diag"), diag)


def test_other_fixed_presets():
    np.testing.assert_array_equal(single("prewitt-x"), np.outer([1, 1, 1], [-1, 0, 1]))
    np.testing.assert_array_equal(single("prewitt-y"), np.outer([-1, 0, 1], [1, 1, 1]))
    identity = np.zeros((3, 3))
    identity[1, 1] = 1
    np.testing.assert_array_equal(single("identity"), identity)
    lap4 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(single("sharpen"), identity - lap4)
    np.testing.assert_array_equal(single("outline"), -single("laplacian-diag"))
    # the usual emboss (GIMP, Wikipedia): lit from the top left
    np.testing.assert_array_equal(single("emboss"), [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    image = rng(67).integers(0, 256, size=(15, 16), dtype=np.uint8)
    np.testing.assert_allclose(filter2d(image, single("identity")), image, atol=0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9, 16])
def test_box_preset(n):
    box = single(f"box:{n}")
    np.testing.assert_allclose(box, np.full((n, n), 1.0 / n**2), rtol=1e-12)
    if n % 2 == 1:
        image = rng(n).integers(0, 256, size=(30, 30), dtype=np.uint8)
        want = cv2.blur(image.astype(np.float32), (n, n), borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_allclose(filter2d(image, box), want, atol=1e-3)


@pytest.mark.parametrize("n", [11, 15, 21, 31])
def test_gaussian_preset_default_sigma_equals_get_gaussian_kernel(n):
    """Large enough that getGaussianKernel(n, 0) computes the formula instead of using a fixed
    binomial table (OpenCV 4 has tables up to 7 taps, OpenCV 5 up to 9)."""
    g = cv2.getGaussianKernel(n, 0, ktype=cv2.CV_64F).ravel()
    np.testing.assert_allclose(single(f"gaussian:{n}"), np.outer(g, g), atol=1e-6)


@pytest.mark.parametrize("n", [3, 5, 7, 9])
@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0])
def test_gaussian_preset_explicit_sigma(n, sigma):
    g = cv2.getGaussianKernel(n, sigma, ktype=cv2.CV_64F).ravel()
    np.testing.assert_allclose(single(f"gaussian:{n}:{sigma}"), np.outer(g, g), atol=1e-6)
    np.testing.assert_allclose(single(f"gaussian:{n}:{sigma}").sum(), 1.0, atol=1e-12)


@pytest.mark.parametrize("n", [3, 5, 7, 9])
def test_gaussian_small_default_sigma_follows_opencv_rule(n):
    """For up to 7 (OpenCV 5: 9) taps OpenCV's sigma=0 uses fixed tables; convkit documents
    the sigma *rule* 0.3*((n-1)*0.5-1)+0.8, so compare with that sigma passed explicitly."""
    sigma = 0.3 * ((n - 1) * 0.5 - 1) + 0.8
    g = cv2.getGaussianKernel(n, sigma, ktype=cv2.CV_64F).ravel()
    np.testing.assert_allclose(single(f"gaussian:{n}"), np.outer(g, g), atol=1e-6)


def test_edges4_bank():
    kernels = parse_kernels("edges4")
    assert len(kernels) == 4
    base = np.array([[-1, -1, 1, 1]] * 4, np.float64)
    expected = [base, -base, base.T, -base.T]
    for k, want in zip(kernels, expected, strict=True):
        np.testing.assert_array_equal(k.matrix, want)
    assert [k.name for k in kernels] == ["edges4-1", "edges4-2", "edges4-3", "edges4-4"]
