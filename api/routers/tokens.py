"""The caller, and the tenant's API tokens (admins): made (secret shown once), listed, revoked."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, Request

from api.models import Me, NewToken, TokenIn, TokenInfo
from api.problems import ApiError
from api.security import Principal, new_token, require
from api.state import ApiState, Idempotency, idempotency, once, state

router = APIRouter(prefix="/v1", tags=["access"])


@router.get("/me", response_model=Me, summary="Who the caller is: tenant and role")
def me(p: Principal = Depends(require("viewer"))):
    return Me(tenant=p.tenant, role=p.role, subject=p.subject, via=p.via)


@router.get("/tokens", response_model=list[TokenInfo], summary="The tenant's API tokens (never their secrets)")
def list_tokens(p: Principal = Depends(require("admin")), st: ApiState = Depends(state)):
    return st.db.list_tokens(p.tenant)


@router.post("/tokens", response_model=NewToken, status_code=201, summary="Make an API token (its secret is shown once)")
def create_token(body: TokenIn, request: Request, p: Principal = Depends(require("admin")),
                 st: ApiState = Depends(state), idem: Optional[Idempotency] = Depends(idempotency)):
    def work():
        secret = new_token()
        row = st.db.create_token(p.tenant, body.name, body.role, secret, created_by=p.subject)
        return NewToken(**row, token=secret)

    # the secret is never stored: a replay of the same Idempotency-Key returns the token's
    # record with an empty `token` (and makes no second token)
    return once(st, p, idem, request, 201, work, store_as=lambda body: {**body, "token": ""})


@router.delete("/tokens/{token_id}", response_model=TokenInfo, summary="Revoke an API token")
def revoke(token_id: str, p: Principal = Depends(require("admin")), st: ApiState = Depends(state)):
    row = st.db.revoke_token(p.tenant, token_id)
    if row is None:
        raise ApiError(404, "no such token")
    st.auth.forget()
    return row
