"""Declare ROS parameters from frozen dataclasses, build them validated, and validate live changes too.

Every node has one parameter schema: frozen dataclasses with SI units in the field names and validation in
``__post_init__`` (raising ``ValueError`` naming the field). Where the algorithm lives in ``core/``, the
schema IS the core dataclass (``TrackerParams``, ``RowFollowerParams``, ...), flattened into ROS parameters
next to a small dataclass of node-only settings (rates, topics, frames); a field name two parts share is one
parameter. :func:`load_params` (one dataclass) and :func:`load_schema` (several) declare one ROS parameter
per field, read the values (overrides, YAML), type-check them and build the dataclasses. Any problem raises
:class:`ParameterError` naming the node and the parameter, logged FATAL (console and ``/rosout``), so a node
fails at start with one clear line.

Live changes (``ros2 param set``, ``set_parameters``) go through the same validation in a set-parameters
callback: a wrong type, a non-finite number or a value the dataclass rejects is refused with the reason; a
valid value is applied live when the node registered the parameter as live-safe
(:meth:`ParamSet.on_change`), otherwise refused with "needs a restart" (it is never accepted and ignored).
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
    """A parameter value is missing, of the wrong type or out of range.

    ``logged`` is True when the line already went to the node's logger (console and /rosout).
    """

    logged = False


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
        out.append(_coerce(name, v, "scalar", elem, node_name, allow_nonfinite))
    return tuple(out)


def _fatal(node, msg: str) -> ParameterError:
    """A ParameterError whose one line has already gone to the node's logger (console + /rosout)."""
    err = ParameterError(msg)
    try:
        node.get_logger().fatal(msg)
        err.logged = True
    except Exception:  # logging must never hide the error itself
        err.logged = False
    return err


def _default_of(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


class ParamSet:
    """One node's parameter schema: dataclasses flattened into ROS parameters, validated at start and live.

    Parameters
    ----------
    node : rclpy.node.Node
    parts : dataclass types
        Field names shared by two parts are one parameter (the same value goes to both).
    defaults : dict, optional
        The node's shipping default for a field where it differs from the dataclass default.
    prefix : str
        Parameter name prefix.
    """

    def __init__(self, node, *parts, defaults=None, prefix: str = ""):
        for part in parts:
            if not dataclasses.is_dataclass(part):
                raise TypeError(f"{part!r} is not a dataclass")
        self.node = node
        self.parts = parts
        self.prefix = prefix
        self._node_name = node.get_name()
        self._fields: dict[str, tuple] = {}   # field -> (kind, elem, default, doc)
        defaults = dict(defaults or {})
        for part in parts:
            hints = typing.get_type_hints(part)
            for f in dataclasses.fields(part):
                if not f.init or f.name in self._fields:
                    continue
                kind, elem = _base_type(hints[f.name])
                default = defaults.get(f.name, _default_of(f))
                doc = f.metadata.get("doc", "") if f.metadata else ""
                self._fields[f.name] = (kind, elem, default, doc)
        self._live: set[str] = set()
        self._apply = None
        self._pending = None
        self.values = self._declare()
        self.built = self._build(self.values, at_start=True)
        node.add_on_set_parameters_callback(self._validate_change)
        if hasattr(node, "add_post_set_parameters_callback"):
            node.add_post_set_parameters_callback(self._after_change)

    # ------------------------------------------------------------------ start
    def _declare(self) -> dict:
        node, values = self.node, {}
        for field, (kind, elem, default, doc) in self._fields.items():
            name = self.prefix + field
            ptype = _ros_type(kind, elem)
            try:
                if default is None or (kind == "array" and len(default) == 0):
                    # statically typed: rclpy rejects dynamic_typing together with an explicit type
                    node.declare_parameter(name, ptype, ParameterDescriptor(description=doc))
                else:
                    dv = list(default) if kind == "array" else default
                    node.declare_parameter(name, dv, ParameterDescriptor(description=doc, dynamic_typing=True))
            except ParameterException as exc:
                raise _fatal(node, f"{self._node_name}: parameter '{name}': {exc}") from exc
            try:
                value = node.get_parameter(name).value
            except ParameterUninitializedException:
                value = None
            if value is None:
                if default is None:
                    raise _fatal(node, f"{self._node_name}: parameter '{name}' is required but not set")
                value = default
            try:
                values[field] = self._coerce(field, value)
            except ParameterError as exc:
                raise _fatal(node, str(exc)) from exc
        return values

    def _coerce(self, field, value):
        kind, elem, default, _doc = self._fields[field]
        # NaN is accepted only where the schema's own default is NaN ("not set")
        nan_default = (isinstance(default, float) and math.isnan(default)) or (
            isinstance(default, tuple) and len(default) > 0
            and all(isinstance(v, float) and math.isnan(v) for v in default))
        return _coerce(self.prefix + field, value, kind, elem, self._node_name, allow_nonfinite=nan_default)

    def _build(self, values: dict, at_start: bool = False) -> dict:
        out = {}
        for part in self.parts:
            kwargs = {f.name: values[f.name] for f in dataclasses.fields(part) if f.init}
            try:
                out[part] = part(**kwargs)
            except (ValueError, TypeError) as exc:
                msg = str(exc)
                if not any(re.search(rf"\b{re.escape(k)}\b", msg) for k in kwargs):
                    msg = f"invalid parameters: {msg}"
                msg = f"{self._node_name}: {msg}"
                if at_start:
                    raise _fatal(self.node, msg) from exc
                raise ParameterError(msg) from exc
        return out

    def of(self, part):
        """The validated instance of one part."""
        return self.built[part]

    # ------------------------------------------------------------------ live
    def on_change(self, apply, live):
        """Apply changes of the parameters named in ``live`` through ``apply(param_set)``; refuse the others.

        ``apply`` runs after the new values are set and validated; read them with :meth:`of`.
        """
        unknown = set(live) - set(self._fields)
        if unknown:
            raise ValueError(f"live parameters not in the schema: {sorted(unknown)}")
        self._live = set(live)
        self._apply = apply

    def _validate_change(self, params):
        from rcl_interfaces.msg import SetParametersResult

        self._pending = None
        mine = [p for p in params if p.name.startswith(self.prefix) and p.name[len(self.prefix):] in self._fields]
        if not mine:
            return SetParametersResult(successful=True)
        values = dict(self.values)
        for p in mine:
            field = p.name[len(self.prefix):]
            try:
                values[field] = self._coerce(field, p.value)
            except ParameterError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        try:
            built = self._build(values)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        restart = sorted(p.name for p in mine if p.name[len(self.prefix):] not in self._live
                         and values[p.name[len(self.prefix):]] != self.values[p.name[len(self.prefix):]])
        if restart:
            return SetParametersResult(
                successful=False, reason=f"{self._node_name}: {', '.join(restart)} cannot change while running: "
                                         "restart the node with the new value")
        self._pending = (values, built)
        if not hasattr(self.node, "add_post_set_parameters_callback"):
            self._after_change(params)
        return SetParametersResult(successful=True)

    def _after_change(self, _params):
        if self._pending is None:
            return
        self.values, self.built = self._pending
        self._pending = None
        if self._apply is not None:
            self._apply(self)


def load_schema(node, *parts, defaults=None, prefix: str = "") -> ParamSet:
    """Declare the flattened fields of ``parts`` as ROS parameters of ``node``; see :class:`ParamSet`.

    Raises
    ------
    ParameterError
        When a value has the wrong type, is not finite, or a dataclass's validation rejects it.
    """
    return ParamSet(node, *parts, defaults=defaults, prefix=prefix)


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
    pset = ParamSet(node, schema, prefix=prefix)
    return pset.of(schema)
