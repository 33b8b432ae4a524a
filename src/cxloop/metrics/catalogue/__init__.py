"""The built-in KPIs, one module per area."""
