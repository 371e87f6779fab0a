"""The REST API: one router per app, API-key auth scoped to one workspace, domain errors
mapped to responses in one place."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import APIKeyHeader, HttpBearer

from siyu.analytics.explore_api import router as explore_router
from siyu.analytics.leaderboards_api import router as leaderboards_router
from siyu.analytics.metrics_api import router as metrics_router
from siyu.audiences.api import router as audiences_router
from siyu.audiences.layers_api import router as layers_router
from siyu.commerce.api import router as commerce_router
from siyu.contacts.api import router as contacts_router
from siyu.errors import DomainError
from siyu.events.api import router as events_router
from siyu.experiments.api import router as experiments_router
from siyu.inbox.api import router as inbox_router
from siyu.insights.api import router as insights_router
from siyu.journeys.api import router as journeys_router
from siyu.messaging.api import router as messaging_router
from siyu.tenancy import queries as tenancy_queries
from siyu.tenancy import services as tenancy_services
from siyu.tenancy.api import router as tenancy_router


def _authenticate(request: HttpRequest, key: str | None):
    api_key = tenancy_queries.api_key_authenticate(key or "")
    if api_key is None:
        return None
    tenancy_services.api_key_touch(key=api_key)
    request.workspace = api_key.workspace
    request.api_key = api_key
    return api_key


class BearerKey(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        return _authenticate(request, token)


class HeaderKey(APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None):
        return _authenticate(request, key)


api = NinjaAPI(
    title="siyu API",
    version="1",
    description="Private-domain customer operations. Authenticate with `Authorization: Bearer <key>` "
    "or `X-API-Key: <key>`; a key belongs to one workspace and sees only its data. Every write is "
    "idempotent by the caller's id (event_id, order_no, refund_no, sku, code). A batch carries at "
    "most 1000 items and is refused whole, listing every bad item, if any item is bad.",
    auth=[BearerKey(), HeaderKey()],
    urls_namespace="api",
    openapi_url="/v1/openapi.json",
)
api.add_router("/v1/", tenancy_router, tags=["workspace"])
api.add_router("/v1/", contacts_router, tags=["contacts"])
api.add_router("/v1/", events_router, tags=["events"])
api.add_router("/v1/", commerce_router, tags=["commerce"])
api.add_router("/v1/", audiences_router, tags=["audiences"])
api.add_router("/v1/", layers_router, tags=["layers"])
api.add_router("/v1/", insights_router, tags=["insights"])
api.add_router("/v1/", experiments_router, tags=["experiments"])
api.add_router("/v1/", metrics_router, tags=["metrics"])
api.add_router("/v1/", leaderboards_router, tags=["metrics"])
api.add_router("/v1/", explore_router, tags=["analytics"])
api.add_router("/v1/", messaging_router, tags=["messaging"])
api.add_router("/v1/", journeys_router, tags=["journeys"])
api.add_router("/v1/", inbox_router, tags=["tasks"])


def _summary(errors: list[dict[str, str]]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return (f"{first['path']}: " if first["path"] else "") + first["message"] + more


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    body: dict = {"code": exc.code, "detail": exc.message}
    if exc.path:
        body["path"] = exc.path
    errors = getattr(exc, "errors", None)
    if errors:
        body["errors"] = errors
    return api.create_response(request, body, status=exc.http_status)


# Where ninja found the value (body, query, path) and the body's parameter name are not part of
# a client's field path: a batch item's path starts at its index ("3.occurred_at").
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie", "form", "file"})


def _client_path(loc: tuple) -> str:
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
        if parts and parts[0] == "payload":
            parts = parts[1:]
    return ".".join(str(p) for p in parts)


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for err in exc.errors:
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        errors.append({"path": _client_path(tuple(err.get("loc", ()))), "message": message})
    body = {"code": "validation_error", "detail": _summary(errors), "errors": errors}
    return api.create_response(request, body, status=422)


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    body = {"code": "unauthorized", "detail": "Missing, unknown or revoked API key."}
    return api.create_response(request, body, status=401)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    body = {"code": "bad_request" if exc.status_code == 400 else "error", "detail": str(exc)}
    return api.create_response(request, body, status=exc.status_code)

