"""/instances/{id}/settings: change the provider, model, API key or bot token. Secrets are never
shown back (a placeholder says one is saved); an empty secret field keeps the saved one. The
change is stored at once and applied by the next restart."""

from __future__ import annotations

from aiohttp import web

from db.errors import ServiceError
from db.models import Instance
from provisioner.providers import PROVIDERS
from provisioner.service import InstanceChanges
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import SERVICES
from web.pages.guard import signed_in
from web.pages.instance_view import instance_view
from web.pages.render import redirect, render

routes = web.RouteTableDef()

FIELDS = {"model_provider", "model", "api_key", "telegram_bot_token"}


@routes.get("/instances/{id}/settings")
async def settings_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    instance = await request.app[SERVICES].instances.get(user, request.match_info["id"])
    return _form(request, instance, {"model_provider": instance.model_provider, "model": instance.model}, {})


@routes.post("/instances/{id}/settings")
async def save_settings(request: web.Request) -> web.Response:
    user = signed_in(request)
    form = await form_fields(request, FIELDS)
    service = request.app[SERVICES].instances
    instance = await service.get(user, request.match_info["id"])
    changes = _changes(instance, form)
    if changes == InstanceChanges():
        raise redirect(f"/instances/{instance.id}?notice=unchanged")
    try:
        update = await service.update_config(user, instance.id, changes)
    except ServiceError as exc:
        if STATUS_OF.get(type(exc)) == 404:
            raise
        field = exc.field if exc.field in FIELDS else "form"
        typed = {"model_provider": form.get("model_provider", instance.model_provider),
                 "model": form.get("model", instance.model)}  # never the secrets
        return _form(request, instance, typed, {field: exc.message}, status=STATUS_OF.get(type(exc), 400))
    if not update.changed:
        raise redirect(f"/instances/{instance.id}?notice=unchanged")
    raise redirect(f"/instances/{instance.id}?notice={'saved_restart' if update.restart_required else 'saved'}")


def _changes(instance: Instance, form: dict[str, str]) -> InstanceChanges:
    """Only what the person changed: an unchanged select, or an empty secret, is left as it is."""
    changes = InstanceChanges()
    provider = form.get("model_provider", "")
    if provider and provider != instance.model_provider:
        changes.model_provider = provider
    model = form.get("model", "")
    if model and model != instance.model:
        changes.model = model
    for secret in ("api_key", "telegram_bot_token"):
        if form.get(secret, "").strip():
            setattr(changes, secret, form[secret].strip())
    return changes


def _form(request: web.Request, instance: Instance, values: dict, errors: dict, *, status: int = 200) -> web.Response:
    service = request.app[SERVICES].instances
    return render(request, "instances/settings.html", {
        "instance": instance_view(service, instance),
        "providers": PROVIDERS,
        "values": values,
        "errors": errors,
        "has_bot": instance.telegram_bot_token_sealed is not None,
    }, status=status)

