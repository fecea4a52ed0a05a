"""True signatures of the compiled layer classes for ``help()`` and ``inspect.signature``.

The compiled classes carry their signature as text (``__text_signature__``). ``inspect`` only
evaluates constants there, so a default such as ``ConvolutionMode.Same`` would make the whole
signature unreadable. This module evaluates those defaults in the ``akida`` namespace and sets
``__signature__`` on the class, so ``help(akida.Convolutional)`` shows
``convolution_mode=ConvolutionMode.Same`` instead of nothing or ``Ellipsis``.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any


def signature_from_text(text: str, namespace: dict[str, Any]) -> inspect.Signature:
    """The :class:`inspect.Signature` of a text signature such as ``"(a, b=1, c=Mode.X)"``.

    Parameters
    ----------
    text : str
        A parenthesized parameter list; defaults are Python expressions.
    namespace : dict
        Names the defaults may use.

    Returns
    -------
    inspect.Signature

    Examples
    --------
    >>> import enum
    >>> class Mode(enum.Enum):
    ...     X = 1
    >>> str(signature_from_text("(a, b=1, c=Mode.X)", {"Mode": Mode}))
    '(a, b=1, c=<Mode.X: 1>)'
    """
    tree = ast.parse(f"def f{text}: pass")
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    arguments = function.args
    positional = arguments.posonlyargs + arguments.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults))
    defaults += list(arguments.defaults)
    parameters = []
    for arg, default in zip(positional, defaults):
        kind = (
            inspect.Parameter.POSITIONAL_ONLY
            if arg in arguments.posonlyargs
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        value = (
            inspect.Parameter.empty
            if default is None
            else eval(compile(ast.Expression(default), "<signature>", "eval"), dict(namespace))
        )
        parameters.append(inspect.Parameter(arg.arg, kind, default=value))
    for arg, kw_default in zip(arguments.kwonlyargs, arguments.kw_defaults):
        value = (
            inspect.Parameter.empty
            if kw_default is None
            else eval(compile(ast.Expression(kw_default), "<signature>", "eval"), dict(namespace))
        )
        parameters.append(inspect.Parameter(arg.arg, inspect.Parameter.KEYWORD_ONLY, default=value))
    return inspect.Signature(parameters)


def install(classes: list[type], namespace: dict[str, Any]) -> None:
    """Sets ``__signature__`` of each class from its ``__text_signature__``."""
    for cls in classes:
        text = getattr(cls, "__text_signature__", None)
        if text:
            cls.__signature__ = signature_from_text(text, namespace)  # type: ignore[attr-defined]
