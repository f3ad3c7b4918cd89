"""The shop's order and customer systems, behind one small interface.

- ``models``: typed records (customer, order, shipment, after-sale, ...).
- ``base``: the ``ShopBackend`` interface and its exceptions.
- ``sql``: SQLAlchemy adapter (embedded SQLite by default, any URL via
  ``KEFU_DATABASE_URL``).
- ``http``: REST adapter for shops whose systems are web services
  (contract: ``docs/order-api.openapi.yml``).
- ``factory``: picks the adapter from environment variables.
"""
