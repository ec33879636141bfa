"""``SlackEmulator``: a local Slack workspace over real HTTP for the bot, its tests and the sandbox."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from aiohttp import web

from .client import Reply, Sender, Tamper
from .limits import Fault, RateLimits
from .socket_mode import SocketMode
from .state import (
    DEFAULT_CHANNELS,
    DEFAULT_USERGROUPS,
    DEFAULT_USERS,
    Ephemeral,
    Event,
    FileRecord,
    Message,
    Workspace,
)
from .surfaces import Surfaces
from .views import Clock, ViewRecord, ViewStore
from .views_api import ViewsApi
from .webapi import WebApi


class SlackEmulator:
    """Slack's Web API, file uploads and ``response_url``s, plus a client that sends signed
    slash commands and button clicks to the app's ``request_url``.

    Use as ``async with SlackEmulator(request_url=...) as emu:`` (or ``await emu.start()`` /
    ``await emu.stop()``) and point the app at it with ``AsyncWebClient(base_url=emu.api_url)``.
    """

    def __init__(
        self,
        *,
        signing_secret: str = "emulator-signing-secret",
        bot_token: str = "xoxb-emulator-bot-token",
        app_token: str = "xapp-1-emulator",
        team_id: str = "T0001",
        team_domain: str = "hello-chatops",
        bot_user_id: str = "UBOT",
        bot_id: str = "B0001",
        app_id: str = "A0001",
        verification_token: str = "emulator-verification-token",
        users: Iterable[dict[str, Any]] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        channels: dict[str, str] | None = None,
        bot_channels: Iterable[str] | None = None,
        channel_members: dict[str, list[str]] | None = None,
        request_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.monotonic,
        home_tab: bool = True,
        rate_limits: bool | RateLimits = True,
    ) -> None:
        """``clock`` (seconds, monotonic) times trigger ids: a test may pass its own and advance it
        instead of sleeping. ``home_tab=False`` is an app without the Home tab (``views.publish``
        answers ``not_enabled``). ``rate_limits``: Slack's documented rate limits (True, the default),
        none (False), or a :class:`RateLimits` of the caller's (its own clock or limits)."""
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.host = host
        self.port = port
        self.workspace = Workspace(
            team_id=team_id,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            users=DEFAULT_USERS if users is None else users,
            channels=DEFAULT_CHANNELS if channels is None else channels,
            usergroups=DEFAULT_USERGROUPS if usergroups is None else usergroups,
            bot_channels=bot_channels,
            channel_members=channel_members,
        )
        limits = rate_limits if isinstance(rate_limits, RateLimits) else RateLimits(enabled=rate_limits)
        self.webapi = WebApi(self.workspace, bot_token=bot_token, rate_limits=limits)
        self.views = ViewStore(self.workspace, clock=clock, home_enabled=home_tab)
        self.webapi.methods.update(ViewsApi(self.views).methods())
        self.webapi.extra_state["views"] = self.views.snapshot
        self.sender = Sender(
            self.workspace,
            self.webapi,
            signing_secret=signing_secret,
            verification_token=verification_token,
            request_url=request_url,
            triggers=self.views.triggers,
        )
        self.app_token = app_token
        self.socket = SocketMode(self.workspace, self.webapi, self.sender, app_token=app_token)
        self.surfaces = Surfaces(self.views, self.sender, self.socket)
        self.app = web.Application(client_max_size=1024**3)
        self.webapi.add_routes(self.app)
        self.socket.add_routes(self.app)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- life cycle -----------------------------------------------------------------------
    async def start(self) -> SlackEmulator:
        """Listen on ``host:port`` (port 0 picks a free one); ``api_url`` is valid afterwards."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.base_url = f"http://{self.host}:{self.port}"
        self.workspace.base_url = self.base_url
        self._runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        await self.sender.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """Base URL for slack_sdk clients (``AsyncWebClient(base_url=emu.api_url)``), ends with '/'."""
        if not self.base_url:
            raise RuntimeError("the emulator is not started")
        return f"{self.base_url}/api/"

    @property
    def request_url(self) -> str | None:
        return self.sender.request_url

    @request_url.setter
    def request_url(self, url: str | None) -> None:
        self.sender.request_url = url

    # ---- faults and rate limits ------------------------------------------------------------
    @property
    def limits(self) -> RateLimits:
        """Slack's rate limits as the emulator enforces them (``emu.limits.enabled = False``: off)."""
        return self.webapi.limits

    @property
    def rate_limited(self) -> list[dict[str, Any]]:
        """The latest 429 answers (by limit or fault rule): ``{"method", "key", "retry_after", "source"}``."""
        return list(self.webapi.limited.recent)

    def add_fault(self, method: str | None = None, *, status: int = 429, count: int | None = 1,
                  retry_after: int | float | str = 1, error: str | None = None) -> Fault:
        """Answer the next ``count`` calls of ``method`` (None: any; ``"upload"``: the upload URL) with
        429 ``ratelimited`` and ``Retry-After``, or a 5xx HTML page (a JSON ``error`` when given),
        before anything changes; as ``POST /_emulator/faults`` does."""
        return self.webapi.add_fault(Fault(method, status, count, retry_after, error))

    def clear_faults(self) -> None:
        self.webapi.faults.clear()

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls to ``method`` answer HTTP 429 ``ratelimited`` with ``Retry-After``."""
        self.add_fault(method, status=429, count=times, retry_after=retry_after)

    def fail(self, method: str, status: int = 500, times: int = 1) -> None:
        """The next ``times`` calls to ``method`` answer HTTP ``status`` (5xx) with an HTML error page.
        ``method="upload"`` targets the file upload URL."""
        if not 500 <= status <= 599:
            raise ValueError("fail() injects server errors: status must be 5xx")
        self.add_fault(method, status=status, count=times)

    # ---- reads ----------------------------------------------------------------------------
    def messages(self, channel: str, *, thread_ts: str | None = None) -> list[Message]:
        """Current channel messages in order (thread replies included; ``thread_ts`` filters a thread)."""
        msgs = self.workspace.messages(channel)
        if thread_ts is not None:
            msgs = [m for m in msgs if m.thread_ts == thread_ts]
        return msgs

    def ephemerals(self, channel: str, user: str | None = None) -> list[Ephemeral]:
        return self.workspace.ephemerals(channel, user)

    @property
    def files(self) -> dict[str, FileRecord]:
        """Files whose bytes arrived, by ID."""
        return {fid: f for fid, f in self.workspace.files.items() if f.data is not None}

    def file_bytes(self, file_id: str) -> bytes:
        data = self.workspace.files[file_id].data
        if data is None:
            raise KeyError(f"file {file_id} has no uploaded bytes")
        return data

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every Web API call answered: ``{"method", "status", "ok", "error"}``."""
        return self.webapi.calls

    @property
    def response_posts(self) -> list[dict[str, Any]]:
        return self.workspace.response_posts

    def state(self) -> dict[str, Any]:
        return self.webapi.snapshot()

    async def wait_for(
        self,
        predicate: Callable[[Message | Ephemeral], bool],
        timeout: float = 5.0,
    ) -> Message | Ephemeral:
        """Wait until a current message or ephemeral satisfies ``predicate`` (checked at once and after
        every change); raises ``TimeoutError`` after ``timeout`` seconds."""
        return await self.workspace.wait_for(predicate, timeout)

    def subscribe(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; returns the unsubscribe function."""
        return self.workspace.subscribe(callback)

    # ---- Socket Mode ----------------------------------------------------------------------
    @property
    def socket_connected(self) -> bool:
        """Whether an app holds a Socket Mode connection (``apps.connections.open`` + WebSocket)."""
        return self.socket.connected

    async def wait_socket_connected(self, timeout: float = 10.0) -> None:
        """Wait until an app has connected over Socket Mode; ``TimeoutError`` after ``timeout`` s."""
        await self.socket.wait_connected(timeout)

    # ---- client side ----------------------------------------------------------------------
    async def send_command(
        self,
        *,
        user: str = "U1",
        channel: str = "C1",
        text: str = "",
        command: str = "/hello",
        tamper: Tamper = None,
        url: str | None = None,
        via: Literal["http", "socket"] = "http",
    ) -> Reply:
        """Send a signed slash command to the request URL; see :meth:`Sender.send_command`.

        ``via="socket"`` delivers it as a ``slash_commands`` envelope to the Socket Mode connection
        instead: status 200 when acknowledged in time, else ``socket_mode.TIMEOUT_STATUS``
        (``operation_timeout``) or ``socket_mode.NOT_CONNECTED_STATUS`` (``dispatch_failed``).
        """
        if via == "socket":
            if tamper is not None or url is not None:
                raise ValueError("tamper= and url= apply to HTTP requests, not to Socket Mode")
            return await self.socket.send_command(user=user, channel=channel, text=text, command=command)
        return await self.sender.send_command(
            user=user, channel=channel, text=text, command=command, tamper=tamper, url=url
        )

    async def click(
        self,
        *,
        user: str = "U2",
        channel: str = "C1",
        message_ts: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        tamper: Tamper = None,
        url: str | None = None,
        via: Literal["http", "socket"] = "http",
    ) -> Reply:
        """Click a button of a stored message as ``user``: a signed ``block_actions`` request
        (``via="socket"``: an ``interactive`` envelope on the Socket Mode connection)."""
        if via == "socket":
            if tamper is not None or url is not None:
                raise ValueError("tamper= and url= apply to HTTP requests, not to Socket Mode")
            return await self.socket.click(
                user=user, channel=channel, message_ts=message_ts, action_id=action_id, value=value, block_id=block_id
            )
        return await self.sender.click(
            user=user,
            channel=channel,
            message_ts=message_ts,
            action_id=action_id,
            value=value,
            block_id=block_id,
            tamper=tamper,
            url=url,
        )

    # ---- views: modals and the Home tab -----------------------------------------------------
    def modal_stack(self, user: str) -> list[ViewRecord]:
        """The user's open modal views, root first (empty when no modal is open)."""
        return self.views.stack(user)

    def modal(self, user: str) -> ViewRecord | None:
        """The modal view the user sees (the top of their stack), if any."""
        return self.views.top(user)

    def modal_errors(self, user: str) -> dict[str, str]:
        """The errors shown under input blocks of the user's visible modal (block_id -> message)."""
        top = self.views.top(user)
        return dict(top.errors) if top is not None else {}

    def home(self, user: str) -> ViewRecord | None:
        """The Home tab view last published for the user."""
        return self.views.homes.get(user)

    def view(self, view_id: str) -> ViewRecord | None:
        """Any view by id, closed ones included."""
        return self.views.by_id.get(view_id)

    async def wait_for_modal(
        self, user: str, predicate: Callable[[ViewRecord], bool] | None = None, timeout: float = 5.0
    ) -> ViewRecord:
        """Wait until the user sees a modal view (satisfying ``predicate``); ``TimeoutError`` after
        ``timeout`` seconds."""

        def check() -> ViewRecord | None:
            top = self.views.top(user)
            return top if top is not None and (predicate is None or predicate(top)) else None

        return await self.workspace.wait_until(check, timeout)

    async def wait_for_home(
        self, user: str, predicate: Callable[[ViewRecord], bool] | None = None, timeout: float = 5.0
    ) -> ViewRecord:
        """Wait until a Home view (satisfying ``predicate``) is published for the user."""

        def check() -> ViewRecord | None:
            home = self.views.homes.get(user)
            return home if home is not None and (predicate is None or predicate(home)) else None

        return await self.workspace.wait_until(check, timeout)

    async def submit_view(
        self,
        user: str,
        view_id: str | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        via: Literal["http", "socket"] = "http",
    ) -> Reply:
        """Submit the user's visible modal with ``values`` (block_id -> value, or block_id ->
        {action_id: value}) as a ``view_submission``; the app's answer is applied as Slack does and
        ``Reply.outcome`` says what became of the modal. See :meth:`Surfaces.submit_view`."""
        return await self.surfaces.submit_view(user, view_id, values, via=via)

    async def close_view(
        self, user: str, view_id: str | None = None, *, clear: bool = False, via: Literal["http", "socket"] = "http"
    ) -> Reply | None:
        """Close the user's visible modal view; ``view_closed`` goes to the app if it asked
        (``notify_on_close``). See :meth:`Surfaces.close_view`."""
        return await self.surfaces.close_view(user, view_id, clear=clear, via=via)

    async def click_view(
        self,
        user: str,
        view_id: str,
        *,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        via: Literal["http", "socket"] = "http",
    ) -> Reply:
        """Click a button in a modal the user sees or in their Home tab (``block_actions``)."""
        return await self.surfaces.click_view(
            user, view_id, action_id=action_id, value=value, block_id=block_id, via=via
        )

    async def open_home(self, user: str, *, tab: str = "home", via: Literal["http", "socket"] = "http") -> Reply:
        """The user opens the app's Home: an ``app_home_opened`` event (``event_callback`` over HTTP,
        an ``events_api`` envelope over Socket Mode), with the Home view if one was published."""
        return await self.surfaces.open_home(user, tab=tab, via=via)
