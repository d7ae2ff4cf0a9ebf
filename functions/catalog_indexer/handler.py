"""CatalogUpdate.* -> the products table and the vector index, in revision order."""
from __future__ import annotations

from mangaassist.workers.catalog import index_product
from mangaassist.workers.runtime import event_worker

lambda_handler = event_worker(index_product)
