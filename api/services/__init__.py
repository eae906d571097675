"""Domain rules, callable without HTTP: plain values in, models out, `DomainError` on refusal."""
