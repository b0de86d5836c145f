"""Feature pipelines: plain functions from normalised invoices / transfers to feature frames."""
