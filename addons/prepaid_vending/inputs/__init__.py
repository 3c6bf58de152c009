"""Reading what people and programs type or send, one way everywhere (pure
Python, no trytond import): ``numbers`` for amounts and other decimals,
``jsonlines`` for the JSON-lines commands."""
