"""The interface every order/customer backend implements.

Backends store and fetch records and keep writes atomic and idempotent; the
business rules (who may see what, what is eligible) live in the action
modules. Every method may raise ``BackendUnavailable`` when the system is
down or too slow; nothing is half-written in that case.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from typing import List, Optional, Sequence, Tuple

from actions.backends.models import (
    Address,
    AfterSale,
    Coupon,
    Customer,
    InvoiceRequest,
    Order,
    Product,
)


class BackendError(Exception):
    """Base class of backend failures."""


class BackendUnavailable(BackendError):
    """The system did not answer in time, refused the connection or failed."""


class NotFound(BackendError):
    """The record does not exist."""


class NotAllowed(BackendError):
    """The write is not allowed in the record's current state.

    ``reason`` is a short machine-readable code, e.g. ``already_shipped``.
    """

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


class ShopBackend(ABC):
    """Order, customer, catalogue and after-sales data of one shop."""

    # ---- reads
    @abstractmethod
    def get_customer(self, customer_id: str) -> Optional[Customer]:
        """The customer with ``customer_id``, or ``None``."""

    @abstractmethod
    def get_order(self, order_id: str) -> Optional[Order]:
        """The order with ``order_id`` (any owner), or ``None``."""

    @abstractmethod
    def list_orders(
        self, customer_id: str, statuses: Optional[Sequence[str]] = None, limit: int = 5
    ) -> List[Order]:
        """The customer's orders, newest first, optionally only ``statuses``."""

    @abstractmethod
    def list_after_sales(self, order_id: str) -> List[AfterSale]:
        """After-sales cases of an order, newest first."""

    @abstractmethod
    def get_after_sale(self, case_id: str) -> Optional[AfterSale]:
        """The after-sales case ``case_id``, or ``None``."""

    @abstractmethod
    def list_coupons(self, customer_id: str) -> List[Coupon]:
        """All coupons of a customer (used and expired ones included)."""

    @abstractmethod
    def find_products(self, query: str, limit: int = 5) -> List[Product]:
        """Catalogue products whose name contains ``query`` (case-insensitive)."""

    @abstractmethod
    def list_products(self) -> List[Product]:
        """The whole catalogue."""

    # ---- writes (atomic, idempotent)
    @abstractmethod
    def cancel_order(self, order_id: str) -> Tuple[Order, bool]:
        """Cancel a ``pending_payment``/``paid`` order.

        Returns the order and whether this call cancelled it (``False`` when
        it already was). Raises ``NotFound`` or ``NotAllowed("already_shipped")``.
        """

    @abstractmethod
    def record_shipment_urge(self, order_id: str, day: str) -> bool:
        """Record a dispatch urge; ``False`` if one exists for that day."""

    @abstractmethod
    def create_after_sale(
        self, order_id: str, case_type: str, amount: Decimal, reason: str
    ) -> Tuple[AfterSale, bool]:
        """Open an after-sales case unless the order already has an open one.

        Returns the (new or existing open) case and whether it was created.
        """

    @abstractmethod
    def change_address(self, order_id: str, address: Address) -> Order:
        """Replace the delivery address of an order that has not shipped.

        Raises ``NotAllowed("already_shipped")`` or ``NotAllowed("cancelled")``.
        """

    @abstractmethod
    def create_invoice_request(
        self, order_id: str, title: str, tax_number: Optional[str], email: str
    ) -> Tuple[InvoiceRequest, bool]:
        """Request an invoice; an identical pending request is returned as is."""
