"""The HTML pages written from Jinja2 templates (the auditors' site, the dashboard): one escaping rule.

Every ``{{ value }}`` goes through ``escaped``: None blank, text escaped by html.escape (``&#x27;``
for a quote, as the pages always had; markupsafe would write ``&#39;``), Markup (a macro's output,
an inline SVG) as it is. File names, reasons and samples come from deliveries, so nothing reaches a
page unescaped; autoescape stays on behind it for a value that reached the output some other way.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def escaped(value: object, text: Callable[[object], str] = str) -> Markup:
    """A template value as HTML; ``text`` says how a non-Markup value reads (e.g. counts with separators)."""
    if isinstance(value, Markup):
        return value
    return Markup("") if value is None else Markup(html.escape(text(value)))


def page_templates(
    package: str, finalize: Callable[[object], Markup] = escaped, keep_trailing_newline: bool = False
) -> Environment:
    """The templates of ``package``'s ``templates/`` folder, every value written by ``finalize``."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        finalize=finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
    )
