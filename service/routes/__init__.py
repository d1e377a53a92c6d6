"""HTTP routes, one module per area; they parse, call the model, and shape the response."""
