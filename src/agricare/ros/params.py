"""Declare ROS parameters from a frozen dataclass and build the validated dataclass.

Every node has one parameter schema: a frozen dataclass with SI units in the field names and validation in
``__post_init__`` (raising ``ValueError`` naming the field). :func:`load_params` declares one ROS parameter
per field with the dataclass default, reads the values (overrides, YAML), type-checks them and builds the
dataclass. Any problem raises :class:`ParameterError` naming the node and the parameter, so a node fails at
start with one clear line.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.parameter import Parameter


class ParameterError(ValueError):
    """A parameter value is missing, of the wrong type or out of range."""


_SCALARS = (bool, int, float, str)


def _base_type(tp):
    """Map a dataclass annotation to (kind, element type). kind is 'scalar' or 'array'."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _base_type(args[0])
    if tp in _SCALARS:
        return "scalar", tp
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        elem = args[0] if args else float
        if elem not in _SCALARS:
            raise TypeError(f"unsupported array element type {elem!r}")
        return "array", elem
    raise TypeError(f"unsupported parameter type {tp!r}")


def _ros_type(kind, elem):
    if kind == "scalar":
        return {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE,
                str: Parameter.Type.STRING}[elem]
    return {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
            float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}[elem]


def _coerce(name, value, kind, elem, node_name, allow_nonfinite=False):
    def bad(why):
        return ParameterError(f"{node_name}: parameter '{name}': {why} (got {value!r})")

    if kind == "scalar":
        if elem is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if elem is bool and not isinstance(value, bool):
            raise bad("expected true/false")
        if elem is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad("expected an integer")
        if elem is float and not isinstance(value, float):
            raise bad("expected a number")
        if elem is str and not isinstance(value, str):
            raise bad("expected a string")
        if elem is float and not math.isfinite(value) and not (allow_nonfinite and math.isnan(value)):
            raise bad("must be finite")
        return value
    if value is None:
        return ()
    seq = list(value)
    out = []
    for v in seq:
        out.append(_coerce(name, v, "scalar", elem, node_name))
    return tuple(out)


def load_params(node, schema, prefix: str = ""):
    """Declare every field of ``schema`` as a ROS parameter of ``node`` and return a validated instance.

    Parameters
    ----------
    node : rclpy.node.Node
    schema : type
        A dataclass type. Field types: bool, int, float, str, tuple[float, ...], tuple[str, ...], etc.
    prefix : str
        Optional parameter name prefix (``"safety."``).

    Raises
    ------
    ParameterError
        When a value has the wrong type, is not finite, or the dataclass validation rejects it.
    """
    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"{schema!r} is not a dataclass")
    node_name = node.get_name()
    hints = typing.get_type_hints(schema)
    values = {}
    for f in dataclasses.fields(schema):
        if not f.init:
            continue
        name = prefix + f.name
        kind, elem = _base_type(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        ptype = _ros_type(kind, elem)
        doc = f.metadata.get("doc", "") if f.metadata else ""
        try:
            if default is None or (kind == "array" and len(default) == 0):
                # statically typed: rclpy rejects dynamic_typing together with an explicit type
                node.declare_parameter(name, ptype, ParameterDescriptor(description=doc))
            else:
                dv = list(default) if kind == "array" else default
                node.declare_parameter(name, dv, ParameterDescriptor(description=doc, dynamic_typing=True))
        except ParameterException as exc:
            raise ParameterError(f"{node_name}: parameter '{name}': {exc}") from exc
        try:
            value = node.get_parameter(name).value
        except ParameterUninitializedException:
            value = None
        if value is None:
            if default is None:
                raise ParameterError(f"{node_name}: parameter '{name}' is required but not set")
            value = default
        # NaN is accepted only where the schema's own default is NaN ("not set")
        nan_default = isinstance(default, float) and math.isnan(default)
        values[f.name] = _coerce(name, value, kind, elem, node_name, allow_nonfinite=nan_default)
    try:
        return schema(**values)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        # name the parameter if the validation message does not already
        if not any(re.search(rf"\b{re.escape(f.name)}\b", msg) for f in dataclasses.fields(schema)):
            msg = f"invalid parameters: {msg}"
        raise ParameterError(f"{node_name}: {msg}") from exc

