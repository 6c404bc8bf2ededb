"""Building signed federation requests and envelopes for the tests."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.federation import signing
from app.federation.envelope import iso

# Test-only secrets (32+ bytes, as the settings demand). Never used outside tests.
PINGGU_KEY = ("pinggu-k1", "pinggu-signs-to-jizhou-" + "p" * 24)
YUTIAN_KEY = ("yutian-k1", "yutian-signs-to-jizhou-" + "y" * 24)
JIZHOU_TO_PINGGU = ("jizhou-to-pinggu-k1", "jizhou-signs-to-pinggu-" + "j" * 24)
JIZHOU_TO_YUTIAN = ("jizhou-to-yutian-k1", "jizhou-signs-to-yutian-" + "z" * 24)


def partners_config(pinggu_endpoint: str = "http://pinggu.test") -> dict[str, Any]:
    return {
        "pinggu": {
            "endpoint": pinggu_endpoint,
            "inbound_keys": {PINGGU_KEY[0]: PINGGU_KEY[1]},
            "outbound_key_id": JIZHOU_TO_PINGGU[0],
            "outbound_secret": JIZHOU_TO_PINGGU[1],
        },
        "yutian": {
            "endpoint": "http://yutian.test",
            "inbound_keys": {YUTIAN_KEY[0]: YUTIAN_KEY[1]},
            "outbound_key_id": JIZHOU_TO_YUTIAN[0],
            "outbound_secret": JIZHOU_TO_YUTIAN[1],
        },
    }


def signed(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    key: tuple[str, str] = PINGGU_KEY,
    query: str = "",
    now: float | None = None,
) -> dict[str, str]:
    headers = signing.sign(
        method=method, path=path, query=query, body=body, key_id=key[0], secret=key[1].encode(), now=now
    )
    return {"Content-Type": "application/json", **headers}


def envelope(
    contents: list[dict[str, Any]],
    *,
    sender: str = "pinggu",
    kind: str = "Report",
    status: str = "Actual",
    distribution_id: str | None = None,
    sent: datetime | None = None,
    expires: datetime | None = None,
) -> dict[str, Any]:
    sent = sent or datetime.now(UTC)
    return {
        "distributionID": distribution_id or f"{sender}:{uuid.uuid4().hex}",
        "senderID": sender,
        "dateTimeSent": iso(sent),
        "dateTimeExpires": iso(expires or sent + timedelta(hours=1)),
        "distributionStatus": status,
        "distributionKind": kind,
        "content": contents,
    }


def incident(incident_id: str = "PG-2025-0001", **overrides: Any) -> dict[str, Any]:
    obj = {
        "incidentID": incident_id,
        "revision": 1,
        "typeCode": "17A01",
        "typeName": "forest_fire",
        "category": "natural_disaster",
        "severity": "III",
        "status": "verified",
        "location": {"type": "Point", "coordinates": [117.33, 40.18]},
        "dateTime": iso(datetime.now(UTC)),
        "title": "Forest fire near the Jizhou border",
        "description": "Fire front about 2 km from the border, wind from the west",
        "casualties": {"dead": 0, "injured": 1, "missing": 0, "trapped": 0},
    }
    obj.update(overrides)
    return obj


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


CAP_ALERT: dict[str, Any] = {
    "identifier": "PG-CAP-2025-0042",
    "sender": "pinggu-emergency",
    "sent": "2025-04-01T10:00:00+08:00",
    "status": "Actual",
    "msgType": "Alert",
    "scope": "Public",
    "code": ["forest-fire-joint-defence"],
    "info": [
        {
            "language": "zh-CN",
            "category": ["Fire"],
            "event": "森林火险橙色预警",
            "responseType": ["Prepare", "Monitor"],
            "urgency": "Expected",
            "severity": "Severe",
            "certainty": "Likely",
            "eventCode": [{"valueName": "GB/T35561", "value": "17A01"}],
            "expires": "2025-04-02T10:00:00+08:00",
            "senderName": "平谷区应急管理局",
            "headline": "森林火险橙色预警 — orange forest-fire danger",
            "description": "Dry and windy; forest-fire danger is high in the mountains along the border.",
            "instruction": "No open fires in the forest areas.",
            "parameter": [{"valueName": "level", "value": "orange"}],
            "area": [
                {
                    "areaDesc": "平谷—蓟州 border mountains",
                    "polygon": ["40.10,117.20 40.10,117.40 40.25,117.40 40.25,117.20 40.10,117.20"],
                    "geocode": [{"valueName": "adcode", "value": "110117"}],
                    "altitude": 300,
                    "ceiling": 1200.5,
                }
            ],
        }
    ],
}
