"""The REST API: one router per app, API-key auth scoped to one workspace, domain errors
mapped to responses in one place."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import APIKeyHeader, HttpBearer

from siyu.errors import DomainError
from siyu.tenancy import queries as tenancy_queries
from siyu.tenancy import services as tenancy_services


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
    "idempotent by the caller's id (event_id, order_no, sku, code).",
    auth=[BearerKey(), HeaderKey()],
    urls_namespace="api",
)


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError):
    body = {"code": exc.code, "detail": exc.message}
    if exc.path:
        body["path"] = exc.path
    return api.create_response(request, body, status=exc.http_status)


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError):
    errors = []
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "payload")]
        errors.append({"path": ".".join(loc), "message": err.get("msg", "invalid")})
    return api.create_response(request, {"code": "validation_error", "detail": errors}, status=422)
