"""Pure decisions: (spec, status, observed cloud instance, now) -> status and actions. No I/O."""
