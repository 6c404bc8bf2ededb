"""Public warnings in OASIS CAP 1.2: XML <-> the JSON form (element names as in the XML), and the alert area.

XML comes from outside, so it is parsed by defusedxml (no DTDs, no entity expansion, no external
references). The JSON form keeps CAP's element names; repeatable elements are lists.
"""

import xml.etree.ElementTree as ET
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from shapely.geometry import MultiPolygon, Polygon

NS = "urn:oasis:names:tc:emergency:cap:1.2"
_Q = "{" + NS + "}"

# Element order of the CAP 1.2 XML schema; (name, repeatable, kind) with kind "text" | "pairs" | "info" | "area".
ALERT = [
    ("identifier", False, "text"),
    ("sender", False, "text"),
    ("sent", False, "text"),
    ("status", False, "text"),
    ("msgType", False, "text"),
    ("source", False, "text"),
    ("scope", False, "text"),
    ("restriction", False, "text"),
    ("addresses", False, "text"),
    ("code", True, "text"),
    ("note", False, "text"),
    ("references", False, "text"),
    ("incidents", False, "text"),
    ("info", True, "info"),
]
INFO = [
    ("language", False, "text"),
    ("category", True, "text"),
    ("event", False, "text"),
    ("responseType", True, "text"),
    ("urgency", False, "text"),
    ("severity", False, "text"),
    ("certainty", False, "text"),
    ("audience", False, "text"),
    ("eventCode", True, "pairs"),
    ("effective", False, "text"),
    ("onset", False, "text"),
    ("expires", False, "text"),
    ("senderName", False, "text"),
    ("headline", False, "text"),
    ("description", False, "text"),
    ("instruction", False, "text"),
    ("web", False, "text"),
    ("contact", False, "text"),
    ("parameter", True, "pairs"),
    ("area", True, "area"),
]
AREA = [
    ("areaDesc", False, "text"),
    ("polygon", True, "text"),
    ("circle", True, "text"),
    ("geocode", True, "pairs"),
    ("altitude", False, "number"),
    ("ceiling", False, "number"),
]
_CHILDREN = {"info": INFO, "area": AREA}


class CapError(ValueError):
    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.pointer = pointer


# --- XML -> JSON --------------------------------------------------------------------------------------------


def _text(element: Any) -> str:
    return (element.text or "").strip()


def _read(element: Any, spec: list[tuple[str, bool, str]], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    known = {name for name, _, _ in spec}
    for child in element:
        tag = child.tag
        if not isinstance(tag, str) or not tag.startswith(_Q):
            raise CapError(f"element {tag!r} is not in the CAP 1.2 namespace {NS}", where)
        name = tag[len(_Q) :]
        if name not in known:
            if name == "resource":  # attachments are not carried between partners
                continue
            raise CapError(f"<{name}> is not a CAP 1.2 element here", f"{where}/{name}")
    for name, repeatable, kind in spec:
        found = element.findall(_Q + name)
        if not found:
            continue
        if not repeatable and len(found) > 1:
            raise CapError(f"<{name}> may appear only once", f"{where}/{name}")
        values = [
            _value(f, kind, f"{where}/{name}/{i}" if repeatable else f"{where}/{name}") for i, f in enumerate(found)
        ]
        out[name] = values if repeatable else values[0]
    return out


def _value(element: Any, kind: str, where: str) -> Any:
    if kind == "text":
        return _text(element)
    if kind == "number":
        try:
            return float(_text(element))
        except ValueError:
            raise CapError(f"<{element.tag[len(_Q) :]}> must be a number", where) from None
    if kind == "pairs":
        name, value = element.find(_Q + "valueName"), element.find(_Q + "value")
        if name is None or value is None:
            raise CapError("valueName and value are required", where)
        return {"valueName": _text(name), "value": _text(value)}
    return _read(element, _CHILDREN[kind], where)


def alert_from_xml(xml: str | bytes) -> dict[str, Any]:
    """A CAP 1.2 <alert> document as the JSON form (not yet schema-checked)."""
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CapError(f"refused XML construct: {type(exc).__name__}") from None
    except ET.ParseError as exc:
        raise CapError(f"not well-formed XML: {exc}") from None
    if root.tag != _Q + "alert":
        raise CapError(f"the root element must be <alert> in the namespace {NS}")
    return _read(root, ALERT, "")


# --- JSON -> XML --------------------------------------------------------------------------------------------


def _write(parent: Any, data: dict[str, Any], spec: list[tuple[str, bool, str]]) -> None:
    for name, repeatable, kind in spec:
        if name not in data or data[name] is None:
            continue
        for value in data[name] if repeatable else [data[name]]:
            element = ET.SubElement(parent, _Q + name)
            if kind == "pairs":
                ET.SubElement(element, _Q + "valueName").text = str(value["valueName"])
                ET.SubElement(element, _Q + "value").text = str(value["value"])
            elif kind in _CHILDREN:
                _write(element, value, _CHILDREN[kind])
            elif kind == "number":
                element.text = repr(float(value)) if not float(value).is_integer() else str(int(value))
            else:
                element.text = str(value)


def alert_to_xml(alert: dict[str, Any]) -> str:
    """The JSON form as a CAP 1.2 XML document (UTF-8, with declaration)."""
    ET.register_namespace("", NS)
    root = ET.Element(_Q + "alert")
    _write(root, alert, ALERT)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


# --- area ---------------------------------------------------------------------------------------------------


def polygon_of(text: str, where: str) -> Polygon:
    """A CAP polygon ("lat,lon lat,lon ...", first = last) as a valid shapely polygon in lon/lat."""
    points: list[tuple[float, float]] = []
    for pair in text.split():
        lat_s, _, lon_s = pair.partition(",")
        lat, lon = float(lat_s), float(lon_s)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise CapError(f"{pair} is not a latitude,longitude pair", where)
        points.append((lon, lat))
    if len(points) < 4 or points[0] != points[-1]:
        raise CapError("a CAP polygon needs 4+ points and must end where it starts", where)
    polygon = Polygon(points)
    if not polygon.is_valid or polygon.area == 0:
        raise CapError("the polygon is not valid (self-intersecting or degenerate)", where)
    return polygon


def area_wkt(alert: dict[str, Any], prefix: str = "") -> str | None:
    """Every polygon of every info's areas as one EWKT MultiPolygon (None when the alert has none)."""
    polygons = [
        polygon_of(text, f"{prefix}/info/{i}/area/{j}/polygon/{k}")
        for i, info in enumerate(alert.get("info", []))
        for j, area in enumerate(info.get("area", []))
        for k, text in enumerate(area.get("polygon", []))
    ]
    if not polygons:
        return None
    return f"SRID=4326;{MultiPolygon(polygons).wkt}"
