"""The daemon's HTTP contract: request and response models (msgspec Structs), one module per
concern, and the OpenAPI document generated from them.

Routes decode bodies and query strings into these models (a bad field is a 400 naming it) and
encode responses from them; the core returns its own objects and knows nothing of wire names
(the jobs API's camelCase lives in `research.py` only). The client decodes into the same
models, so the CLI and scripts get typed objects.

Importing this package costs nothing: each module imports msgspec when it is itself imported.
"""
