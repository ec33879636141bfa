"""The target of a command, a request or a release: one service in one environment, and what it binds.

A :class:`Target` is resolved once at each entry point (a slash command, a form, a button, an
Alertmanager notification, a stored release the engine takes up) and carried from there: its
:attr:`~Target.config` (the service's objects, the environment's cluster context and namespace, its
Prometheus, analysis and bake settings), its :attr:`~Target.policy` (deployers, approvers, channels),
and through :meth:`Target.cluster` and :attr:`Target.prometheus` the connections to both.

Without a catalogue file the variables describe a catalogue of one service in one environment
(:meth:`bot.core.catalogue.Catalogue.from_config`) and its one target is the bot's own configuration;
requests and releases record that target's names as ``""`` (as they did before catalogues), and
:meth:`Targets.get` reads ``""`` as "the default". :attr:`Target.title` is how messages name a target.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.core.catalogue import Catalogue, Environment, Service
from bot.core.config import Config
from bot.core.policy import Policy

if TYPE_CHECKING:
    from bot.cluster.kube import Cluster


@dataclass(frozen=True, eq=False)
class Target:
    """One service in one environment, as resolved from the catalogue."""

    service: Service
    environment: Environment
    config: Config
    policy: Policy
    named: bool  # the catalogue is a file that names its services (else the variables' one service)
    _connect: Callable[[Config], Awaitable[Cluster]] = field(repr=False)
    _prometheus: Callable[[Target], Any] = field(repr=False)

    @property
    def names(self) -> tuple[str, str]:
        """(service, environment) as requests, releases and alert groups record them ("" in a catalogue of one)."""
        return (self.service.name, self.environment.name) if self.named else ("", "")

    @property
    def title(self) -> str:
        """How a message names it: "greeter in staging", or the service alone when the catalogue has one."""
        return f"{self.service.name} in {self.environment.name}" if self.named else self.config.stable_deployment

    async def cluster(self) -> Cluster:
        """The connection to the target's cluster, scoped to its namespace (raises ``ClusterError`` with the reason)."""
        return await self._connect(self.config)

    @property
    def prometheus(self) -> Any:
        """The target's Prometheus client (its URL, metric names and selectors): a ``bot.observe.prom.Prometheus``."""
        return self._prometheus(self)


class Targets:
    """Names to :class:`Target`, one object per service and environment (so a target is resolved once and shared)."""

    def __init__(self, catalogue: Catalogue, config: Config, policy: Policy, *,
                 connect: Callable[[Config], Awaitable[Cluster]], prometheus: Callable[[Target], Any]) -> None:
        self.catalogue = catalogue
        self.config = config
        self._policy = policy
        self._connect = connect
        self._prometheus = prometheus
        self._made: dict[tuple[str, str], Target] = {}
        self._own: Target | None = None

    @property
    def named(self) -> bool:
        """Whether a catalogue file names the services (commands then take ``[<service>] [<environment>]``)."""
        return bool(self.catalogue.source)

    @property
    def default(self) -> Target:
        """The bot's own: the service and environment the variables describe, with their Config and Policy."""
        if self._own is None:
            own = Catalogue.from_config(self.config).first
            self._own = Target(service=own, environment=own.environments[0], config=self.config, policy=self._policy,
                               named=False, _connect=self._connect, _prometheus=self._prometheus)
        return self._own

    def resolve(self, service: str | None, environment: str | None, channel: str = "") -> Target:
        """The target a command means (:meth:`Catalogue.resolve`: unknown or ambiguous names raise ``UsageError``)."""
        chosen, env = self.catalogue.resolve(service or None, environment or None, channel)
        return self._target(chosen, env)

    def get(self, service: str, environment: str) -> Target:
        """The target recorded as ``(service, environment)``: no service is the bot's own (a catalogue of one
        records both as "", and so did every request made before a catalogue was configured); a service without
        an environment is in its default one."""
        if not self.named or not service:
            return self.default
        return self.resolve(service, environment)

    def every(self, services: Iterable[Service] | None = None) -> list[Target]:
        """Every service (of the catalogue, or ``services`` of it) in every environment, in catalogue order."""
        if services is None:
            return [self._target(service, env) for service, env in self.catalogue.pairs()]
        return [self._target(service, env) for service in services for env in service.environments]

    def _target(self, service: Service, env: Environment) -> Target:
        if not self.named:
            return self.default
        key = (service.name, env.name)
        made = self._made.get(key)
        if made is None:
            config = service.config_for(env, self.config, by_namespace=len(self.catalogue.services) > 1)
            made = self._made[key] = Target(service=service, environment=env, config=config,
                                            policy=Policy(config, self._policy.groups), named=True,
                                            _connect=self._connect, _prometheus=self._prometheus)
        return made
