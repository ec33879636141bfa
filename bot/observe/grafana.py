"""Links to look further: the Grafana dashboard when one is configured, else Prometheus's graph page.

* Grafana: ``<base>/d/<uid>/<slug>?from=<ms>&to=<ms>&var-version=<v>`` — ``from``/``to`` are Unix
  milliseconds and ``var-<name>`` sets a dashboard template variable.
* Prometheus: ``<prom>/graph?g0.expr=...&g0.tab=0&g0.range_input=1h&g1.expr=...`` — one graph per
  expression (``tab=0`` is the graph tab), the same PromQL the bot ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from bot.core import times
from bot.core.config import Config
from bot.observe.prom import Prometheus
from bot.observe.promql import DEFAULT_RANGE, duration_seconds, parse_range
from bot.observe.series import Snapshot


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def dashboard_url(
    base: str, uid: str, slug: str, *, start: datetime, end: datetime, version: str | None = None
) -> str:
    """A Grafana dashboard link over ``[start, end]``, optionally with ``var-version`` set."""
    params: list[tuple[str, str]] = [("from", str(_ms(start))), ("to", str(_ms(end)))]
    if version:
        params.append(("var-version", version))
    path = f"{base.rstrip('/')}/d/{quote(uid, safe='')}/{quote(slug, safe='')}"
    return f"{path}?{urlencode(params)}"


def prometheus_graph_url(
    prom_url: str, expressions: Mapping[str, str] | Iterable[str], *, range_text: str = DEFAULT_RANGE
) -> str:
    """Prometheus's expression browser with one graph per expression over the last ``range_text``."""
    exprs = list(expressions.values() if isinstance(expressions, Mapping) else expressions)
    params: list[tuple[str, str]] = []
    for index, expr in enumerate(exprs):
        params += [(f"g{index}.expr", expr), (f"g{index}.tab", "0"), (f"g{index}.range_input", range_text)]
    return f"{prom_url.rstrip('/')}/graph?{urlencode(params)}"


def links_for(
    config: Config, snapshot_or_range: Snapshot | str | None = None, version: str | None = None
) -> list[tuple[str, str]]:
    """``(label, url)`` pairs for a status message: Grafana when configured, else Prometheus.

    ``snapshot_or_range`` is a :class:`Snapshot` (its exact start/end and expressions are used) or a
    range such as ``"6h"`` (ending now).
    """
    if isinstance(snapshot_or_range, Snapshot):
        rng, start, end = snapshot_or_range.range, snapshot_or_range.start, snapshot_or_range.end
    else:
        rng = parse_range(snapshot_or_range)
        end = times.now()
        start = end - timedelta(seconds=duration_seconds(rng))
    if config.grafana_url:
        url = dashboard_url(
            config.grafana_url, config.grafana_dashboard_uid, config.grafana_dashboard_slug,
            start=start, end=end, version=version,
        )
        label = f"Grafana dashboard ({version}, {rng})" if version else f"Grafana dashboard ({rng})"
        return [(label, url)]
    prom = Prometheus(config.prometheus_url, timeout=config.prometheus_timeout_seconds, names=config.metrics)
    exprs = prom.expressions(rng, version=version)
    shown = {k: exprs[k] for k in ("rate", "success", "p99")}
    label = f"Prometheus graphs ({version}, {rng})" if version else f"Prometheus graphs ({rng})"
    return [(label, prometheus_graph_url(config.prometheus_url, shown, range_text=rng))]
