"""Input shapes for stores, staff, products, orders and refunds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import Field, model_validator

from siyu.commerce.models import OrderChannel
from siyu.contacts.schemas import IdentityIn
from siyu.schemas import AwareDatetime, Code, Money, StrictModel


class StoreIn(StrictModel):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    city: str = Field(default="", max_length=64)
    region: str = Field(default="", max_length=64)
    opened_at: date | None = None
    is_active: bool = True


class StaffIn(StrictModel):
    code: Code
    name: str = Field(min_length=1, max_length=100)
    store_code: Code | None = None
    wecom_userid: str = Field(default="", max_length=64)
    is_manager: bool = False
    is_active: bool = True


class ProductIn(StrictModel):
    sku: Code
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(default="", max_length=64)
    price: Money
    cost: Money | None = None
    is_new: bool = False
    launch_date: date | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True


class OrderItemIn(StrictModel):
    sku: Code
    name: str = Field(default="", max_length=200)
    quantity: int = Field(gt=0, le=100000)
    unit_price: Money
    amount: Money | None = None

    @model_validator(mode="after")
    def _amount(self) -> OrderItemIn:
        if self.amount is None:
            self.amount = self.unit_price * self.quantity
        return self


class RefundIn(StrictModel):
    refund_no: Code
    amount: Money
    refunded_at: AwareDatetime
    reason: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _positive(self) -> RefundIn:
        if self.amount <= 0:
            raise ValueError("refund amount must be greater than 0")
        return self


class OrderIn(StrictModel):
    order_no: Code
    contact: IdentityIn | None = None
    contact_id: int | None = None
    channel: OrderChannel
    platform: str = Field(default="", max_length=32)
    store_code: Code | None = None
    staff_code: Code | None = None
    paid_at: AwareDatetime
    gross_amount: Money | None = None
    discount_amount: Money = Decimal("0.00")
    amount: Money | None = None
    items: list[OrderItemIn] = Field(default_factory=list, max_length=500)
    refunds: list[RefundIn] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _money_adds_up(self) -> OrderIn:
        if self.contact is None and self.contact_id is None:
            raise ValueError("an order needs a contact (identity) or contact_id")
        items_total = sum((i.amount for i in self.items), Decimal("0.00")) if self.items else None
        gross = self.gross_amount if self.gross_amount is not None else items_total
        if gross is None:
            if self.amount is None:
                raise ValueError("give amount, gross_amount or items")
            gross = self.amount + self.discount_amount
        if items_total is not None and items_total != gross:
            raise ValueError(f"items add up to {items_total}, but gross_amount is {gross}")
        if self.discount_amount > gross:
            raise ValueError(f"discount {self.discount_amount} exceeds gross amount {gross}")
        paid = gross - self.discount_amount
        if self.amount is not None and self.amount != paid:
            raise ValueError(
                f"amount {self.amount} != gross_amount {gross} - discount_amount {self.discount_amount}"
            )
        self.gross_amount, self.amount = gross, paid
        refunded = sum((r.amount for r in self.refunds), Decimal("0.00"))
        if refunded > paid:
            raise ValueError(f"refunds total {refunded} exceeds amount paid {paid}")
        if len({r.refund_no for r in self.refunds}) != len(self.refunds):
            raise ValueError("refund_no repeats within the order")
        return self
