"""Pure, point-in-time feature functions, one module per domain."""
