"""HTTP routes (FastAPI routers under /v1, the event and watch streams): each checks the caller, parses its body,
calls an application service or a store and renders a view. No route module imports another route module
(pyproject.toml's import-linter contracts); what two of them share lives in routes/common.py or services/."""
