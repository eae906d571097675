"""marshmallow schemas: one class per direction (read, create, update, query)."""
