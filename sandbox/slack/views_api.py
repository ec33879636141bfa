"""``views.open``, ``views.push``, ``views.update`` and ``views.publish`` over a :class:`ViewStore`.

The bot token is checked by :class:`WebApi` before these run, as for every other method.
"""

from __future__ import annotations

from typing import Any

from .content import ApiError, check_view
from .views import ViewStore


def _missing(name: str) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {name}"]})


class ViewsApi:
    def __init__(self, store: ViewStore) -> None:
        self.store = store
        self.ws = store.ws

    def methods(self) -> dict[str, Any]:
        return {
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
        }

    def _trigger(self, args: dict[str, Any]):
        trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger_id:
            raise _missing("trigger_id")
        return self.store.triggers.check(str(trigger_id))

    def views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """Open a modal for the user whose interaction issued ``trigger_id``; the trigger is spent
        only when the view is accepted."""
        trigger = self._trigger(args)
        spec = check_view(args.get("view"), kinds=("modal",))
        self.store.check_external_id(spec)
        trigger.used = True
        rec = self.store.open(trigger.user, spec)
        return {"view": rec.to_api(self.ws)}

    def views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        """Push onto the user's open modal (``not_found`` without one; ``push_limit_reached`` at 3)."""
        trigger = self._trigger(args)
        spec = check_view(args.get("view"), kinds=("modal",))
        self.store.check_external_id(spec)
        if not self.store.stack(trigger.user):
            raise ApiError("not_found")
        rec = self.store.push(trigger.user, spec)
        trigger.used = True
        return {"view": rec.to_api(self.ws)}

    def views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        """Replace a live view found by ``view_id`` or ``external_id``; a ``hash`` that is not the
        view's current one is ``hash_conflict``."""
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise _missing("view_id or external_id")
        rec = self.store.get(str(view_id)) if view_id else self.store.by_external_id(str(external_id))
        if rec is None:
            raise ApiError("not_found")
        spec = check_view(args.get("view"), kinds=(rec.type,))
        if args.get("hash") and str(args["hash"]) != rec.hash:
            raise ApiError("hash_conflict")
        self.store.check_external_id(spec, keep=rec)
        self.store.update(rec, spec)
        return {"view": rec.to_api(self.ws)}

    def views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the Home tab of ``user_id``."""
        user = args.get("user_id")
        if not user:
            raise _missing("user_id")
        if str(user) not in self.ws.users:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["invalid `user_id`"]})
        if not self.store.home_enabled:
            raise ApiError("not_enabled")
        spec = check_view(args.get("view"), kinds=("home",))
        current = self.store.homes.get(str(user))
        if args.get("hash") and (current is None or str(args["hash"]) != current.hash):
            raise ApiError("hash_conflict")
        self.store.check_external_id(spec, keep=current)
        rec = self.store.publish(str(user), spec)
        return {"view": rec.to_api(self.ws)}
