"""The class/type and sensor names of the SiLK "twoway" site (``silk.conf``).

Flow files store numeric sensor and flowtype ids; the names come from the
site's ``silk.conf``. We ship the stock twoway map (also used by the FCCX
reference data), whose sensors are named ``S<id>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from silkwatch.detectors.schema import FLOWTYPE_UNKNOWN, SENSOR_UNKNOWN


@dataclass(frozen=True)
class FlowType:
    """One flowtype of ``silk.conf``: its class, type name and file-name prefix."""

    flowtype_id: int
    class_name: str
    type_name: str
    prefix: str


#: flowtype id → class/type/prefix (``site/twoway/silk.conf``)
TWOWAY_FLOWTYPES: dict[int, FlowType] = {
    ft.flowtype_id: ft
    for ft in (
        FlowType(0, "all", "in", "in"),
        FlowType(1, "all", "out", "out"),
        FlowType(2, "all", "inweb", "iw"),
        FlowType(3, "all", "outweb", "ow"),
        FlowType(4, "all", "innull", "innull"),
        FlowType(5, "all", "outnull", "outnull"),
        FlowType(6, "all", "int2int", "int2int"),
        FlowType(7, "all", "ext2ext", "ext2ext"),
        FlowType(8, "all", "inicmp", "inicmp"),
        FlowType(9, "all", "outicmp", "outicmp"),
        FlowType(10, "all", "other", "other"),
    )
}
FLOWTYPE_BY_TYPE = {ft.type_name: ft for ft in TWOWAY_FLOWTYPES.values()}
FLOWTYPE_BY_PREFIX = {ft.prefix: ft for ft in TWOWAY_FLOWTYPES.values()}


def sensor_name(sensor_id: int) -> str:
    """``S3`` for sensor 3; ``?`` for the invalid sensor 65535, as rwcut prints it."""
    return "?" if sensor_id == SENSOR_UNKNOWN else f"S{sensor_id}"


def sensor_id(name: str) -> int:
    """Inverse of ``sensor_name`` (``S3`` → 3, ``?`` → 65535); raises ValueError otherwise."""
    if name == "?":
        return SENSOR_UNKNOWN
    if name[:1] != "S" or not name[1:].isdigit():
        raise ValueError(f"unknown sensor name {name!r}")
    return int(name[1:])


def flowtype_names(flowtype_id: int) -> tuple[str, str]:
    """(class, type) names; ``("?", "?")`` for flowtypes the site does not define."""
    ft = TWOWAY_FLOWTYPES.get(flowtype_id)
    return (ft.class_name, ft.type_name) if ft else ("?", "?")


def flowtype_id(class_name: str, type_name: str) -> int:
    """Inverse of ``flowtype_names``; unknown names give 255 (invalid), like SiLK."""
    ft = FLOWTYPE_BY_TYPE.get(type_name)
    return ft.flowtype_id if ft and ft.class_name == class_name else FLOWTYPE_UNKNOWN
