"""The REST API (``/api/v1``): a FastAPI app whose routers map DTOs to and from the domain."""
