"""Typed records exchanged with the shop's order and customer systems.

Money is ``Decimal`` (yuan, two decimals); times are timezone-aware
``datetime`` values. Records are immutable; writes go through
``ShopBackend`` methods.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Dict, List, Optional, Tuple

TIERS = ("normal", "silver", "gold", "platinum")
ORDER_STATUSES = ("pending_payment", "paid", "shipped", "delivered", "cancelled")
AFTER_SALE_TYPES = ("return", "refund", "exchange")
AFTER_SALE_STATUSES = ("pending", "approved", "returning", "refunding", "completed",
                       "rejected", "cancelled")
OPEN_AFTER_SALE_STATUSES = ("pending", "approved", "returning", "refunding")


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    phone: str
    tier: str
    points: int


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price: Decimal
    stock: int
    # e.g. {"size": ["S", "M", "L"], "colour": ["白色", "黑色"]}
    attributes: Dict[str, List[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderItem:
    sku: str
    name: str
    qty: int
    price: Decimal


@dataclass(frozen=True)
class Address:
    name: str
    phone: str
    region: str
    detail: str


@dataclass(frozen=True)
class ShipmentEvent:
    time: datetime
    location: str
    description: str


@dataclass(frozen=True)
class Shipment:
    carrier: str
    tracking_number: str
    events: Tuple[ShipmentEvent, ...] = ()

    def latest_events(self, count: int = 3) -> List[ShipmentEvent]:
        """The ``count`` newest logistics events, newest first."""
        return sorted(self.events, key=lambda e: e.time, reverse=True)[:count]


@dataclass(frozen=True)
class Order:
    id: str
    customer_id: str
    status: str
    created_at: datetime
    total: Decimal
    items: Tuple[OrderItem, ...]
    address: Address
    paid_at: Optional[datetime] = None
    shipped_at: Optional[datetime] = None
    delivered_at: Optional[datetime] = None
    shipment: Optional[Shipment] = None


@dataclass(frozen=True)
class AfterSale:
    id: str
    order_id: str
    type: str
    status: str
    amount: Decimal
    reason: str
    created_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_AFTER_SALE_STATUSES


@dataclass(frozen=True)
class Coupon:
    id: str
    customer_id: str
    title: str
    amount: Decimal
    min_spend: Decimal
    expires_at: datetime
    used: bool


@dataclass(frozen=True)
class InvoiceRequest:
    id: str
    order_id: str
    title: str
    tax_number: Optional[str]
    email: str
    created_at: datetime


@dataclass(frozen=True)
class ShipmentUrge:
    order_id: str
    day: str  # YYYY-MM-DD in the shop's time zone
    created_at: datetime
