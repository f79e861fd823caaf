"""The job engine: durable jobs with leases, and the maintenance workflows they run."""
