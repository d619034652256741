"""Publication-norm policies: loader, check registry, engine, compliance and stage gates."""
