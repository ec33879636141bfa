"""The sub-commands: ``/hello <name> [args]`` -> a module in this package.

Each sub-command is one module that defines:

- its docstring: the help text (first line is the one-line summary);
- ``NAME`` and ``USAGE`` (e.g. ``"/hello deploy <version>"``);
- ``parse(args: Sequence[str], config: Config) -> Request``: pure, raises :class:`UsageError`;
  the request object has a boolean attribute ``mutating`` (does it change the cluster or the bot's
  stored state, so the deployer policy applies?) — :class:`bot.chat.contract.Request`;
- ``async run(request, ctx: Context) -> Reply | None``: the work, after the ack. Read-only commands
  return a :class:`Reply`; changing ones plan their change and hand it to ``ctx.services.approvals``
  (the approval message is their reply) and return ``None``;
- ``COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, ...)``, last: the one typed
  description of the command that the registry holds and the dispatcher reads.

For several services (a catalogue, ``HELLO_SERVICES``), ``COMMAND`` may also say (each defaults to no):

- ``targeted=True``: the command acts on one service in one environment, named first
  (``[<service>] [<environment>]``); the dispatcher resolves them once into a :class:`~bot.core.target.Target`,
  ``parse`` gets its Config and ``run`` a :class:`Context` whose ``target``, ``config``, ``policy`` and
  ``cluster()`` are that target's;
- ``overview=True``: given no service where several could be meant, ``ctx.scope`` is ``EVERY``
  (``/hello status`` lists them all);
- ``form=True``: given nothing at all where several could be meant, the form asks for the pair;
- ``change_scope=f``, ``f(request) -> (service, environment)``: a command that names its own pair
  (``/hello promote`` names two environments) says which one's deployers and channels decide;
- ``change_targets=f``, ``f(request, targets) -> list[Target]``: a command whose change covers several services
  and environments (``/hello freeze all``) names them, and the person must be allowed to change each of them;
- ``admin_scope=f``, ``f(request) -> bool``: such a change that ``HELLO_ADMINS`` may make instead, from a channel
  of ``HELLO_OPS_CHANNELS`` (a hold on ``all``).

The chat contract (:class:`Invocation`, :class:`Reply`, :class:`Context`, :class:`Registry`, ...)
lives in :mod:`bot.chat.contract`; it is re-exported here for the command modules.
"""

from __future__ import annotations

import importlib

from bot.chat.contract import EVERY, Command, Context, Invocation, Registry, Reply, Request, Targeted, Upload, split

__all__ = [
    "EVERY",
    "MODULES",
    "Command",
    "Context",
    "Invocation",
    "Registry",
    "Reply",
    "Request",
    "Targeted",
    "Upload",
    "default_registry",
    "split",
]

MODULES = ("help", "status", "deploy", "promote", "canary", "rollback", "cert", "chart", "history", "release",
           "loadtest", "schedule", "stats", "freeze", "unfreeze", "lock", "unlock")


def default_registry() -> Registry:
    """Every sub-command module that exists in this package, in :data:`MODULES` order."""
    registry = Registry()
    for name in MODULES:
        try:
            module = importlib.import_module(f"commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"commands.{name}":
                continue
            raise
        registry.register(module.COMMAND)
    return registry
