"""Conversions between WGS-84, GCJ-02 and BD-09 coordinates.

GPS receivers and OpenStreetMap use WGS-84; Amap (Gaode) and Tencent maps use GCJ-02, the offset
datum mandated for published maps in mainland China; Baidu maps add a second offset on top of
GCJ-02 (BD-09). Data from one provider has to be converted before it is drawn on another's tiles,
otherwise incidents show up several hundred metres from where they are.

All functions take and return ``(lon, lat)`` in decimal degrees, the GeoJSON axis order.
"""

import math
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TypeAlias, assert_never, cast

__all__ = [
    "CoordSys",
    "Coordinates",
    "CoordinatesOut",
    "Transform",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "to_wgs84",
    "transform_coordinates",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]


class CoordSys(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


Transform: TypeAlias = Callable[[float, float], tuple[float, float]]

# GCJ-02 computes its offset in metres and turns it into degrees on the Krasovsky 1940 ellipsoid
# (semi-major axis, first eccentricity squared for f = 1/298.3), as in the leaked reference code that
# wandergis/coordtransform and Artoria2e5/PRCoords reproduce. Ports that use the WGS-84 radius
# 6378137 instead (later googollee/eviltransform) drift from Amap by ~1e-7 degrees.
KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323

# BD-09 as in Baidu's leaked gcj->bd code: a small radius/angle wobble whose frequency is
# x_pi = pi * 3000 / 180, then a fixed shift. Ports that wrote plain pi there are off by tens of
# metres (googollee/eviltransform issue #43).
BD_X_PI = math.pi * 3000.0 / 180.0
BD_DLON = 0.0065
BD_DLAT = 0.006

# The rectangle every common implementation calls "China"; GCJ-02 leaves points outside it as they
# are. It is coarse (it includes Korea and Japan, for instance) but matching it keeps us consistent
# with the providers' SDKs and with data other tools have already converted.
CHINA_MIN_LON = 72.004
CHINA_MAX_LON = 137.8347
CHINA_MIN_LAT = 0.8293
CHINA_MAX_LAT = 55.8271

# Neither offset has a closed-form inverse. Both vary slowly with position, so the fixed-point
# iteration below contracts by ~1e-3 per step and reaches this in 2-4 steps; the cap is a safety net.
# (NaN and infinities never get here: they fail the China rectangle test and pass through.)
_INVERSE_TOLERANCE_DEG = 1e-10
_INVERSE_MAX_ITER = 20


def out_of_china(lon: float, lat: float) -> bool:
    return not (CHINA_MIN_LON <= lon <= CHINA_MAX_LON and CHINA_MIN_LAT <= lat <= CHINA_MAX_LAT)


def _offset_lat_m(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon_m(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


# The _raw functions ignore the China rectangle so the inverse iteration stays smooth near its edge.
def _wgs84_to_gcj02_raw(lon: float, lat: float) -> tuple[float, float]:
    # The polynomial is centred on (105 E, 35 N).
    x, y = lon - 105.0, lat - 35.0
    rad_lat = math.radians(lat)
    magic = 1.0 - KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    # Metres per radian along the meridian and along the parallel at this latitude.
    meridian = KRASOVSKY_A * (1.0 - KRASOVSKY_EE) / (magic * sqrt_magic)
    parallel = KRASOVSKY_A / sqrt_magic * math.cos(rad_lat)
    d_lon = _offset_lon_m(x, y) * 180.0 / (parallel * math.pi)
    d_lat = _offset_lat_m(x, y) * 180.0 / (meridian * math.pi)
    return lon + d_lon, lat + d_lat


def _gcj02_to_bd09_raw(lon: float, lat: float) -> tuple[float, float]:
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * BD_X_PI)
    return z * math.cos(theta) + BD_DLON, z * math.sin(theta) + BD_DLAT


def _bd09_to_gcj02_one_step(lon: float, lat: float) -> tuple[float, float]:
    # Baidu's leaked inverse; off by up to ~2e-6 degrees (~0.2 m), so only used as a first guess.
    x, y = lon - BD_DLON, lat - BD_DLAT
    z = math.hypot(x, y) - 0.00002 * math.sin(y * BD_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * BD_X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def _invert(forward: Transform, lon: float, lat: float, guess: tuple[float, float]) -> tuple[float, float]:
    """Solve forward(p) == (lon, lat) for p, starting from guess.

    forward is the identity plus a small, slowly varying offset, so subtracting the residual is a
    contraction; it converges much faster than a bisection and needs no derivatives.
    """
    p_lon, p_lat = guess
    for _ in range(_INVERSE_MAX_ITER):
        f_lon, f_lat = forward(p_lon, p_lat)
        err_lon, err_lat = f_lon - lon, f_lat - lat
        p_lon -= err_lon
        p_lat -= err_lat
        if abs(err_lon) < _INVERSE_TOLERANCE_DEG and abs(err_lat) < _INVERSE_TOLERANCE_DEG:
            break
    return p_lon, p_lat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if out_of_china(lon, lat):
        return lon, lat
    return _wgs84_to_gcj02_raw(lon, lat)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    # Most libraries stop at the one-step ``2 * gcj - wgs84_to_gcj02(gcj)``, which is off by up to
    # ~5 m; enough to put a caller on the wrong side of a street.
    if out_of_china(lon, lat):
        return lon, lat
    g_lon, g_lat = _wgs84_to_gcj02_raw(lon, lat)
    return _invert(_wgs84_to_gcj02_raw, lon, lat, (2.0 * lon - g_lon, 2.0 * lat - g_lat))


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    if out_of_china(lon, lat):
        return lon, lat
    return _gcj02_to_bd09_raw(lon, lat)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    # Exact rather than Baidu's one-step formula so that repeated conversions of stored geometry
    # do not drift; the two differ by at most ~0.2 m.
    if out_of_china(lon, lat):
        return lon, lat
    return _invert(_gcj02_to_bd09_raw, lon, lat, _bd09_to_gcj02_one_step(lon, lat))


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: float, lat: float, coord_sys: CoordSys) -> tuple[float, float]:
    # CoordSys(...) also accepts the raw string values of API payloads and rejects unknown ones
    # with ValueError instead of passing coordinates through unconverted.
    match CoordSys(coord_sys):
        case CoordSys.WGS84:
            return lon, lat
        case CoordSys.GCJ02:
            return gcj02_to_wgs84(lon, lat)
        case CoordSys.BD09:
            return bd09_to_wgs84(lon, lat)
        case unreachable:
            assert_never(unreachable)


def from_wgs84(lon: float, lat: float, coord_sys: CoordSys) -> tuple[float, float]:
    match CoordSys(coord_sys):
        case CoordSys.WGS84:
            return lon, lat
        case CoordSys.GCJ02:
            return wgs84_to_gcj02(lon, lat)
        case CoordSys.BD09:
            return wgs84_to_bd09(lon, lat)
        case unreachable:
            assert_never(unreachable)


# A GeoJSON "coordinates" member: a position [lon, lat, (alt)] or arrays of them nested to any
# depth (Point, LineString, Polygon, MultiPolygon, ...).
Coordinates: TypeAlias = Sequence[float] | Sequence["Coordinates"]
CoordinatesOut: TypeAlias = list[float] | list["CoordinatesOut"]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def transform_coordinates(coords: Coordinates, fn: Transform) -> CoordinatesOut:
    """Apply fn to every position of a GeoJSON coordinates array, keeping its nesting.

    Tuples come back as lists (what JSON encoders and GeoAlchemy expect); an altitude is kept as is.
    """
    # A str is a Sequence too, and would otherwise recurse forever.
    if isinstance(coords, str | bytes) or not isinstance(coords, Sequence):
        raise TypeError(f"GeoJSON coordinates must be arrays, got {type(coords).__name__}")
    if coords and _is_number(coords[0]):
        if len(coords) < 2 or not all(_is_number(v) for v in coords):
            raise ValueError(f"invalid GeoJSON position: {coords!r}")
        position = cast(Sequence[float], coords)
        lon, lat = fn(float(position[0]), float(position[1]))
        return [lon, lat, *(float(v) for v in position[2:])]
    return [transform_coordinates(cast(Coordinates, child), fn) for child in coords]
