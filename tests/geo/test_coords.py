"""Tests for app.geo.coords against published vectors and round-trip properties."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.geo.coords import (
    CoordSys,
    Transform,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    to_wgs84,
    transform_coordinates,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# Values computed with the forward formulas agree to ~1e-14 across implementations; 1e-6 degrees
# (~0.1 m) is the tolerance the source projects themselves assert with.
FORWARD_TOL_DEG = 1e-6

# Published gcj->wgs values come from the one-step inverse ``2 * gcj - wgs84_to_gcj02(gcj)``, while
# ours is exact. The one-step error reaches 6.0e-5 degrees (5.1 m) inside the China rectangle (our
# max over a 300 x 200 grid), and eviltransform's own tests accept 5 m for that formula.
GCJ_ONE_STEP_TOL_DEG = 1e-4

# Published bd->gcj values come from Baidu's one-step inverse; ours is exact. That formula is off by
# at most 2.0e-6 degrees (~0.2 m) inside the China rectangle (our max over a 400 x 300 grid).
BD_ONE_STEP_TOL_DEG = 3e-6

# The exact inverses must reproduce their input through the forward formula this closely.
INVERSE_RESIDUAL_DEG = 1e-9

ROUND_TRIP_TOL_M = 0.5

# No example database: failures are reported with their falsifying values, and test runs do not
# accumulate state in the checkout.
PROPERTY = settings(database=None, max_examples=300, deadline=None)
PROPERTY_DENSE = settings(database=None, max_examples=2000, deadline=None)

EARTH_MEAN_RADIUS_M = 6_371_008.8  # IUGG mean radius; plenty for sub-metre distances.


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lon1, lat1), (lon2, lat2) = a, b
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_MEAN_RADIUS_M * math.asin(math.sqrt(h))


def assert_close(got: tuple[float, float], want: tuple[float, float], tol: float) -> None:
    assert got[0] == pytest.approx(want[0], abs=tol)
    assert got[1] == pytest.approx(want[1], abs=tol)


# --- Published vectors --------------------------------------------------------------------------

# googollee/eviltransform, python/test.py `TESTS` (the same table is in go/transform_test.go,
# c/test.c and javascript/test.js). Published as (wgsLat, wgsLng, gcjLat, gcjLng); reordered here to
# (lon, lat). The GCJ column is the full-precision forward image of the WGS column.
#
# Its `TESTS_bd` table (29.199786, 120.019809, ...) is deliberately not used: it was generated with
# plain pi where BD-09 uses x_pi (eviltransform issue #43), and is up to ~40 m from correct BD-09.
EVILTRANSFORM_WGS_GCJ = [
    pytest.param((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597), id="shanghai"),
    pytest.param((113.912316, 22.543847), (113.9171764808363, 22.540796131694766), id="shenzhen"),
    pytest.param((116.377817, 39.911954), (116.38404722455657, 39.91334545536069), id="beijing"),
]

# wandergis/coordtransform README.md, "示例用法" section, every function applied to (116.404, 39.915).
WANDERGIS_INPUT = (116.404, 39.915)
WANDERGIS_BD09_TO_GCJ02 = (116.39762729119315, 39.90865673957631)
WANDERGIS_GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
WANDERGIS_WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
WANDERGIS_GCJ02_TO_WGS84 = (116.39775550083061, 39.91359571849836)  # one-step inverse

# wandergis/coordtransform issue #38: the reporter's output of bd09togcj02(115.475216, 38.879741),
# then gcj02towgs84 of that result (one-step inverse). A second, non-Beijing BD-09 point.
ISSUE38_BD09 = (115.475216, 38.879741)
ISSUE38_GCJ02 = (115.46872993578151, 38.87371978266757)
ISSUE38_WGS84 = (115.46242546559161, 38.87283036245824)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM_WGS_GCJ)
def test_wgs84_to_gcj02_eviltransform_table(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert_close(wgs84_to_gcj02(*wgs), gcj, FORWARD_TOL_DEG)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM_WGS_GCJ)
def test_gcj02_to_wgs84_recovers_eviltransform_table(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    # The GCJ column is the exact forward image of the WGS column, so an exact inverse must land
    # on the WGS column itself, far inside eviltransform's own 0.5 m bar for its bisection inverse.
    assert_close(gcj02_to_wgs84(*gcj), wgs, 1e-8)


def test_wandergis_forward_vectors() -> None:
    assert_close(wgs84_to_gcj02(*WANDERGIS_INPUT), WANDERGIS_WGS84_TO_GCJ02, FORWARD_TOL_DEG)
    assert_close(gcj02_to_bd09(*WANDERGIS_INPUT), WANDERGIS_GCJ02_TO_BD09, FORWARD_TOL_DEG)


@pytest.mark.parametrize(
    ("bd", "published_gcj"),
    [
        pytest.param(WANDERGIS_INPUT, WANDERGIS_BD09_TO_GCJ02, id="wandergis-readme"),
        pytest.param(ISSUE38_BD09, ISSUE38_GCJ02, id="wandergis-issue-38"),
    ],
)
def test_bd09_to_gcj02_published(bd: tuple[float, float], published_gcj: tuple[float, float]) -> None:
    gcj = bd09_to_gcj02(*bd)
    assert_close(gcj, published_gcj, BD_ONE_STEP_TOL_DEG)
    assert_close(gcj02_to_bd09(*gcj), bd, INVERSE_RESIDUAL_DEG)


@pytest.mark.parametrize(
    ("gcj", "published_wgs"),
    [
        pytest.param(WANDERGIS_INPUT, WANDERGIS_GCJ02_TO_WGS84, id="wandergis-readme"),
        pytest.param(ISSUE38_GCJ02, ISSUE38_WGS84, id="wandergis-issue-38"),
    ],
)
def test_gcj02_to_wgs84_published(gcj: tuple[float, float], published_wgs: tuple[float, float]) -> None:
    # Reproducing the one-step value from our forward formula pins down what the source computed...
    g_lon, g_lat = wgs84_to_gcj02(*gcj)
    assert_close((2 * gcj[0] - g_lon, 2 * gcj[1] - g_lat), published_wgs, FORWARD_TOL_DEG)
    # ...and the exact inverse stays within that approximation's error of it.
    wgs = gcj02_to_wgs84(*gcj)
    assert_close(wgs, published_wgs, GCJ_ONE_STEP_TOL_DEG)
    assert_close(wgs84_to_gcj02(*wgs), gcj, INVERSE_RESIDUAL_DEG)


def test_bd09_to_wgs84_chains_published_vectors() -> None:
    assert_close(bd09_to_wgs84(*ISSUE38_BD09), ISSUE38_WGS84, GCJ_ONE_STEP_TOL_DEG + BD_ONE_STEP_TOL_DEG)
    assert_close(wgs84_to_bd09(*gcj02_to_wgs84(*WANDERGIS_INPUT)), gcj02_to_bd09(*WANDERGIS_INPUT), 1e-9)


# --- Round trips --------------------------------------------------------------------------------

# Mainland China with a margin inside the rectangle, so that no offset point leaves it (the
# coordtransform README's 73.66-135.05 E, 3.86-53.55 N box).
china_lon = st.floats(min_value=73.7, max_value=135.0, allow_nan=False, allow_infinity=False)
china_lat = st.floats(min_value=3.9, max_value=53.5, allow_nan=False, allow_infinity=False)
# Jizhou District, Tianjin, where almost all of our traffic is.
jizhou_lon = st.floats(min_value=117.1, max_value=117.8, allow_nan=False, allow_infinity=False)
jizhou_lat = st.floats(min_value=39.7, max_value=40.3, allow_nan=False, allow_infinity=False)


def assert_round_trips(lon: float, lat: float) -> None:
    wgs = (lon, lat)
    assert haversine_m(gcj02_to_wgs84(*wgs84_to_gcj02(*wgs)), wgs) < ROUND_TRIP_TOL_M
    assert haversine_m(bd09_to_wgs84(*wgs84_to_bd09(*wgs)), wgs) < ROUND_TRIP_TOL_M


def assert_inverses_converge(lon: float, lat: float) -> None:
    # Read the point as GCJ-02 / BD-09 and check the inverse meets the 1e-9 degree target.
    assert_close(wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat)), (lon, lat), INVERSE_RESIDUAL_DEG)
    assert_close(gcj02_to_bd09(*bd09_to_gcj02(lon, lat)), (lon, lat), INVERSE_RESIDUAL_DEG)


@PROPERTY
@given(lon=china_lon, lat=china_lat)
def test_round_trip_across_china(lon: float, lat: float) -> None:
    assert_round_trips(lon, lat)
    assert_inverses_converge(lon, lat)


@PROPERTY_DENSE
@given(lon=jizhou_lon, lat=jizhou_lat)
def test_round_trip_jizhou(lon: float, lat: float) -> None:
    assert_round_trips(lon, lat)
    assert_inverses_converge(lon, lat)


def _grid(lon0: float, lon1: float, lat0: float, lat1: float, n_lon: int, n_lat: int) -> list[tuple[float, float]]:
    return [
        (lon0 + (lon1 - lon0) * i / (n_lon - 1), lat0 + (lat1 - lat0) * j / (n_lat - 1))
        for i in range(n_lon)
        for j in range(n_lat)
    ]


@pytest.mark.parametrize(
    "grid",
    [
        pytest.param(_grid(73.7, 135.0, 3.9, 53.5, 62, 50), id="china-1deg"),
        pytest.param(_grid(117.1, 117.8, 39.7, 40.3, 71, 61), id="jizhou-0.01deg"),
    ],
)
def test_round_trip_grid(grid: list[tuple[float, float]]) -> None:
    worst_gcj = max(haversine_m(gcj02_to_wgs84(*wgs84_to_gcj02(*p)), p) for p in grid)
    worst_bd = max(haversine_m(bd09_to_wgs84(*wgs84_to_bd09(*p)), p) for p in grid)
    assert worst_gcj < ROUND_TRIP_TOL_M
    assert worst_bd < ROUND_TRIP_TOL_M


def test_offsets_are_real_in_jizhou() -> None:
    # Guards against a round trip that passes because nothing moved: the GCJ-02 shift in Jizhou
    # is several hundred metres, and BD-09 adds roughly another kilometre.
    p = (117.407, 40.046)
    assert 200 < haversine_m(wgs84_to_gcj02(*p), p) < 1000
    assert 500 < haversine_m(wgs84_to_bd09(*p), wgs84_to_gcj02(*p)) < 1500


# --- Outside China ------------------------------------------------------------------------------

OUTSIDE_CHINA = [
    pytest.param((-0.1276, 51.5072), id="london"),
    pytest.param((-74.006, 40.7128), id="new-york"),
    pytest.param((151.2093, -33.8688), id="sydney"),
    pytest.param((139.6917, 35.6895), id="tokyo-east-of-box"),
    pytest.param((71.9, 40.0), id="west-of-box"),
    pytest.param((110.0, 0.5), id="south-of-box"),
    pytest.param((120.0, 56.0), id="north-of-box"),
]

ALL_FUNCTIONS: list[Transform] = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]


@pytest.mark.parametrize("point", OUTSIDE_CHINA)
def test_identity_outside_china(point: tuple[float, float]) -> None:
    assert out_of_china(*point)
    for fn in ALL_FUNCTIONS:
        assert fn(*point) == point, fn.__name__
    for cs in CoordSys:
        assert to_wgs84(*point, cs) == point
        assert from_wgs84(*point, cs) == point


@PROPERTY
@given(
    lon=st.floats(min_value=-180.0, max_value=72.0, allow_nan=False),
    lat=st.floats(min_value=-90.0, max_value=90.0, allow_nan=False),
)
def test_identity_west_of_china_property(lon: float, lat: float) -> None:
    for fn in ALL_FUNCTIONS:
        assert fn(lon, lat) == (lon, lat)


def test_out_of_china_rectangle_is_inclusive() -> None:
    assert not out_of_china(117.4, 40.0)
    assert not out_of_china(72.004, 0.8293)
    assert not out_of_china(137.8347, 55.8271)
    assert out_of_china(72.0039, 30.0)
    assert out_of_china(137.8348, 30.0)
    assert out_of_china(100.0, 0.8292)
    assert out_of_china(100.0, 55.8272)


def test_nan_passes_through() -> None:
    # NaN compares false with every bound, so it is "outside" and never reaches the iteration.
    lon, lat = gcj02_to_wgs84(math.nan, 40.0)
    assert math.isnan(lon)
    assert lat == 40.0


# --- Dispatchers --------------------------------------------------------------------------------


def test_coord_sys_values() -> None:
    assert [cs.value for cs in CoordSys] == ["wgs84", "gcj02", "bd09"]
    assert CoordSys("gcj02") is CoordSys.GCJ02


def test_dispatchers_match_direct_functions() -> None:
    p = (117.407, 40.046)
    assert from_wgs84(*p, CoordSys.WGS84) == p
    assert to_wgs84(*p, CoordSys.WGS84) == p
    assert from_wgs84(*p, CoordSys.GCJ02) == wgs84_to_gcj02(*p)
    assert from_wgs84(*p, CoordSys.BD09) == wgs84_to_bd09(*p)
    assert to_wgs84(*p, CoordSys.GCJ02) == gcj02_to_wgs84(*p)
    assert to_wgs84(*p, CoordSys.BD09) == bd09_to_wgs84(*p)


@pytest.mark.parametrize("cs", list(CoordSys))
def test_dispatchers_round_trip(cs: CoordSys) -> None:
    p = (117.407, 40.046)
    assert haversine_m(to_wgs84(*from_wgs84(*p, cs), cs), p) < 1e-4


def test_dispatchers_accept_raw_strings_and_reject_unknown() -> None:
    p = (117.407, 40.046)
    assert to_wgs84(*p, "bd09") == bd09_to_wgs84(*p)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="wgs-84"):
        to_wgs84(*p, "wgs-84")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baidu"):
        from_wgs84(*p, "baidu")  # type: ignore[arg-type]


# --- GeoJSON coordinates ------------------------------------------------------------------------


def shift(lon: float, lat: float) -> tuple[float, float]:
    return lon + 1.0, lat + 2.0


def test_transform_point() -> None:
    assert transform_coordinates((117.0, 40.0), shift) == [118.0, 42.0]
    assert transform_coordinates([117, 40], shift) == [118.0, 42.0]


def test_transform_point_keeps_altitude() -> None:
    assert transform_coordinates([117.0, 40.0, 55.5], shift) == [118.0, 42.0, 55.5]


def test_transform_linestring() -> None:
    line = [(117.0, 40.0), (117.5, 40.1)]
    assert transform_coordinates(line, shift) == [[118.0, 42.0], [118.5, 42.1]]


def test_transform_polygon_with_hole() -> None:
    polygon = [
        [[117.0, 40.0], [118.0, 40.0], [118.0, 41.0], [117.0, 40.0]],
        [[117.2, 40.2], [117.4, 40.2], [117.4, 40.4], [117.2, 40.2]],
    ]
    got = transform_coordinates(polygon, shift)
    assert got == [[[lon + 1.0, lat + 2.0] for lon, lat in ring] for ring in polygon]


def test_transform_multipolygon_uses_real_conversion() -> None:
    multipolygon = (
        (((117.1, 39.7), (117.8, 39.7), (117.8, 40.3), (117.1, 39.7)),),
        (((117.3, 40.0), (117.4, 40.0), (117.4, 40.1), (117.3, 40.0)),),
    )
    got = transform_coordinates(multipolygon, wgs84_to_gcj02)
    want = [[[list(wgs84_to_gcj02(*pos)) for pos in ring] for ring in poly] for poly in multipolygon]
    # A list never compares equal to a tuple, so this also checks the nesting came back as lists.
    assert got == want


def test_transform_empty_geometry() -> None:
    assert transform_coordinates([], shift) == []
    assert transform_coordinates([[]], shift) == [[]]


@pytest.mark.parametrize(
    ("coords", "error"),
    [
        pytest.param([117.0], ValueError, id="one-number"),
        pytest.param([117.0, "40"], ValueError, id="string-member"),
        pytest.param([[117.0, 40.0], 3.0], TypeError, id="mixed-depth"),
        pytest.param("117,40", TypeError, id="string"),
    ],
)
def test_transform_rejects_malformed(coords: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        transform_coordinates(coords, shift)  # type: ignore[arg-type]
